package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a server process the benchmark started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string // file with its stderr
	exited chan struct{}
	err    error // Wait's result, valid after exited is closed
}

// start runs bin with args, stderr to logPath.
func start(name, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	logf.Close()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// alive returns an error when the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); its log %s ends:\n%s", p.name, p.err, p.log, tail(p.log, 10))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for the process, killing it after 30s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitAnswer polls the socketmap server of p at sock until it answers a
// lookup of key in mapName with a reply for which ok returns true, and
// returns the connection that got it.
func waitAnswer(p *proc, sock, mapName, key string, ok func([]byte) bool, limit time.Duration) (*conn, error) {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		if err := p.alive(); err != nil {
			return nil, err
		}
		c, err := dial(sock)
		if err != nil {
			last = err.Error()
			time.Sleep(time.Millisecond)
			continue
		}
		reply, err := c.ask(mapName, key)
		if err == nil && ok(reply) {
			return c, nil
		}
		c.close()
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("reply %q", reply)
		}
		time.Sleep(time.Millisecond)
	}
	return nil, fmt.Errorf("%s did not answer %s %s within %v (last: %s); log %s:\n%s", p.name, mapName, key, limit, last, p.log, tail(p.log, 10))
}

// startFloor starts the floor server and waits for its "ready" line.
func startFloor(bin, sock, table, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, sock, table)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: "floorserver", cmd: cmd, log: logPath, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.Join(errors.New("floorserver did not start: "+tail(logPath, 5)), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}
