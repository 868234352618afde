// Package systemd speaks the two parts of systemd's service protocol that a
// network daemon needs, without linking libsystemd.
//
// # Readiness notification (sd_notify(3))
//
// When the environment variable NOTIFY_SOCKET is set, the service manager
// listens on a unix datagram socket at that path; a path starting with "@"
// names a socket in the abstract namespace (the "@" stands for the leading
// NUL byte). A Notifier sends each state change as one datagram of
// newline-separated VAR=VALUE assignments, for example:
//
//	READY=1                                 startup is finished
//	RELOADING=1\nMONOTONIC_USEC=N           a reload starts (N: CLOCK_MONOTONIC in µs)
//	STOPPING=1                              shutdown starts
//	STATUS=TEXT                             one line shown by systemctl status
//
// Without NOTIFY_SOCKET (not started by systemd, or Type= is not notify)
// every Notify is a no-op.
//
// # Socket activation (sd_listen_fds(3))
//
// When LISTEN_PID equals the process id, LISTEN_FDS=N says that file
// descriptors 3 to 3+N-1 are listening sockets opened by the service
// manager, and LISTEN_FDNAMES holds their names separated by ":" (from
// FileDescriptorName= in the .socket unit; systemd names an unnamed socket
// after its unit, e.g. "mapdropd.socket"). Listeners returns them once and
// unsets the three variables, so that child processes do not inherit them.
package systemd
