package postfixtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// QueueEntry is one message in the queue, as "postqueue -j" prints it.
type QueueEntry struct {
	QueueName  string           `json:"queue_name"` // incoming, active, deferred, hold, maildrop
	QueueID    string           `json:"queue_id"`
	Sender     string           `json:"sender"`
	Recipients []QueueRecipient `json:"recipients"`
}

// QueueRecipient is a recipient of a queued message.
type QueueRecipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason"`
}

// Queue lists the messages in the instance's queue (postqueue -j).
func (inst *Instance) Queue(t testing.TB) []QueueEntry {
	t.Helper()
	out, err := run(30*time.Second, "/usr/sbin/postqueue", "-c", inst.ConfDir, "-j")
	if err != nil {
		t.Fatalf("postfixtest: postqueue -j: %v\n%s", err, out)
	}
	var q []QueueEntry
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e QueueEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("postfixtest: postqueue -j line %q: %v", line, err)
		}
		q = append(q, e)
	}
	return q
}

// QueueIDs returns the queue ids of the queued messages.
func (inst *Instance) QueueIDs(t testing.TB) []string {
	t.Helper()
	var ids []string
	for _, e := range inst.Queue(t) {
		ids = append(ids, e.QueueID)
	}
	return ids
}

// Queued returns the queue entry with the given id, or nil when the message
// is no longer in the queue.
func (inst *Instance) Queued(t testing.TB, id string) *QueueEntry {
	t.Helper()
	for _, e := range inst.Queue(t) {
		if e.QueueID == id {
			return &e
		}
	}
	return nil
}
