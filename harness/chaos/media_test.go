package chaos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// sink is a plain loopback UDP receiver recording every packet's sequence
// number (first 4 bytes) and arrival time.
type sink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seqs []uint32
	at   []time.Time
	sent map[uint32]time.Time // filled by the sender, read after
	done chan struct{}
}

func newSink(t *testing.T) *sink {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20) // a burst must not overflow the kernel buffer and pass for loss
	s := &sink{conn: c, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 4 {
				continue
			}
			s.mu.Lock()
			s.seqs = append(s.seqs, binary.BigEndian.Uint32(buf))
			s.at = append(s.at, time.Now())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

// waitQuiet waits until no packet arrived for quiet (bounded by limit).
func (s *sink) waitQuiet(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, lastN := time.Now(), -1
	for time.Now().Before(deadline) {
		n := s.count()
		if n != lastN {
			last, lastN = time.Now(), n
		} else if time.Since(last) > quiet {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newImpairment(t *testing.T, seed uint64) *MediaImpairment {
	t.Helper()
	m, err := NewMediaImpairment(seed, MediaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func listenImpaired(t *testing.T, m *MediaImpairment) transport.UDPConn {
	t.Helper()
	c, err := m.Net().ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send writes n numbered packets of size bytes, paced in bursts so the
// receiver keeps up; it returns each packet's send time.
func send(t *testing.T, c transport.UDPConn, to net.Addr, n, size int, pace time.Duration) map[uint32]time.Time {
	t.Helper()
	sent := make(map[uint32]time.Time, n)
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(buf, uint32(i))
		sent[uint32(i)] = time.Now()
		if _, err := c.WriteTo(buf, to); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if pace > 0 {
			time.Sleep(pace)
		} else if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	return sent
}

// TestMediaLossMeasured: 20% configured loss is 20% ±5% measured over 2000
// packets, and the counters agree with what arrived.
func TestMediaLossMeasured(t *testing.T) {
	m := newImpairment(t, 1)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	if err := m.Set("loss", Impairment{Loss: 0.2}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	send(t, tx, rx.conn.LocalAddr(), n, 100, 0)
	rx.waitQuiet(200*time.Millisecond, 5*time.Second)
	got := rx.count()
	loss := 1 - float64(got)/n
	t.Logf("configured loss 0.20, measured %.3f (%d/%d received)", loss, got, n)
	if loss < 0.15 || loss > 0.25 {
		t.Errorf("measured loss %.3f, want 0.20 ±0.05", loss)
	}
	st := m.Stats().Up
	if st.Packets != n || int(st.Dropped)+got != n {
		t.Errorf("stats %+v: packets want %d, dropped+received want %d (received %d)", st, n, n, got)
	}
}

// TestMediaLossSeeded: the same seed drops the same packets.
func TestMediaLossSeeded(t *testing.T) {
	run := func() []uint32 {
		m := newImpairment(t, 42)
		rx := newSink(t)
		tx := listenImpaired(t, m)
		_ = m.Set("loss", Impairment{Loss: 0.3})
		send(t, tx, rx.conn.LocalAddr(), 300, 40, 0)
		rx.waitQuiet(150*time.Millisecond, 5*time.Second)
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return append([]uint32(nil), rx.seqs...)
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("same seed, %d vs %d packets through", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, packet %d differs: %d vs %d", i, a[i], b[i])
		}
	}
}

// TestMediaDelay: every packet arrives at least the configured delay after
// it was sent, in order (constant delay never reorders).
func TestMediaDelay(t *testing.T) {
	m := newImpairment(t, 2)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	_ = m.Set("delay", Impairment{Delay: 100 * time.Millisecond})
	sent := send(t, tx, rx.conn.LocalAddr(), 40, 50, 2*time.Millisecond)
	rx.waitQuiet(300*time.Millisecond, 5*time.Second)
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if len(rx.seqs) != 40 {
		t.Fatalf("received %d of 40 delayed packets", len(rx.seqs))
	}
	minD, maxD := time.Hour, time.Duration(0)
	for i, s := range rx.seqs {
		if s != uint32(i) {
			t.Errorf("packet %d arrived at position %d: a constant delay reordered", s, i)
			break
		}
		d := rx.at[i].Sub(sent[s])
		minD, maxD = min(minD, d), max(maxD, d)
	}
	t.Logf("delay 100ms: measured %s..%s", minD, maxD)
	if minD < 100*time.Millisecond || maxD > 3*time.Second {
		t.Errorf("measured delay %s..%s, want >= 100ms (and below a generous 3s)", minD, maxD)
	}
	if st := m.Stats().Up; st.Delayed != 40 {
		t.Errorf("stats delayed %d, want 40", st.Delayed)
	}
}

// TestMediaJitterReorders: delay with jitter larger than the packet spacing
// makes later packets overtake earlier ones; nothing is lost.
func TestMediaJitterReorders(t *testing.T) {
	m := newImpairment(t, 3)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	_ = m.Set("jitter", Impairment{Delay: 30 * time.Millisecond, Jitter: 25 * time.Millisecond})
	send(t, tx, rx.conn.LocalAddr(), 200, 50, time.Millisecond)
	rx.waitQuiet(300*time.Millisecond, 5*time.Second)
	got, inv := inversions(rx)
	t.Logf("jitter 30±25ms over 200 packets 1ms apart: %d received, %d arrived after a later one", got, inv)
	if got != 200 {
		t.Errorf("received %d of 200", got)
	}
	if inv == 0 {
		t.Error("jitter reordered nothing")
	}
}

// inversions counts packets that arrived after a packet sent later.
func inversions(rx *sink) (got, inv int) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	var hi uint32
	for i, s := range rx.seqs {
		if i > 0 && s < hi {
			inv++
		}
		hi = max(hi, s)
	}
	return len(rx.seqs), inv
}

// TestMediaReorder: reorder 30% holds packets back by the gap so later ones
// overtake them; nothing is lost.
func TestMediaReorder(t *testing.T) {
	m := newImpairment(t, 4)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	_ = m.Set("reorder", Impairment{Reorder: 0.3, ReorderGap: 20 * time.Millisecond})
	send(t, tx, rx.conn.LocalAddr(), 300, 50, time.Millisecond)
	rx.waitQuiet(300*time.Millisecond, 5*time.Second)
	got, inv := inversions(rx)
	st := m.Stats().Up
	t.Logf("reorder 0.3: %d received, %d out of order, %d held back", got, inv, st.Reordered)
	if got != 300 {
		t.Errorf("received %d of 300", got)
	}
	if inv < 30 || st.Reordered < 60 || st.Reordered > 120 {
		t.Errorf("out of order %d (want >= 30), held back %d (want 90 ±30)", inv, st.Reordered)
	}
}

// TestMediaDuplicate: duplicate 0.5 sends about 1.5 copies per packet.
func TestMediaDuplicate(t *testing.T) {
	m := newImpairment(t, 5)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	_ = m.Set("dup", Impairment{Duplicate: 0.5})
	const n = 1000
	send(t, tx, rx.conn.LocalAddr(), n, 50, 0)
	rx.waitQuiet(200*time.Millisecond, 5*time.Second)
	got := rx.count()
	rx.mu.Lock()
	seen := map[uint32]int{}
	for _, s := range rx.seqs {
		seen[s]++
	}
	rx.mu.Unlock()
	twice := 0
	for _, c := range seen {
		if c == 2 {
			twice++
		}
	}
	t.Logf("duplicate 0.5: %d packets received for %d sent, %d twice", got, n, twice)
	if len(seen) != n || twice < 400 || twice > 600 || got != n+twice {
		t.Errorf("distinct %d (want %d), twice %d (want 500 ±100), total %d", len(seen), n, twice, got)
	}
}

// TestMediaBlackholeAndHeal: a blackhole drops everything; clearing it lets
// packets through again. RTPOnly spares non-RTP packets (STUN, DTLS).
func TestMediaBlackholeAndHeal(t *testing.T) {
	m := newImpairment(t, 6)
	rx := newSink(t)
	tx := listenImpaired(t, m)
	f, err := NewMediaFault("media-blackhole", faultspec.KindMediaBlackhole, m, Impairment{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Inject(t.Context()); err != nil {
		t.Fatal(err)
	}
	send(t, tx, rx.conn.LocalAddr(), 50, 20, 0)
	time.Sleep(100 * time.Millisecond)
	if n := rx.count(); n != 0 {
		t.Errorf("blackhole let %d of 50 through", n)
	}
	_ = f.Heal(t.Context())
	send(t, tx, rx.conn.LocalAddr(), 50, 20, 0)
	rx.waitQuiet(150*time.Millisecond, 5*time.Second)
	if n := rx.count(); n != 50 {
		t.Errorf("after heal %d of 50 through", n)
	}

	// RTP only: first byte 0x80 is RTP (RFC 7983), 0x16 is DTLS.
	_ = m.Set("bh", Impairment{Blackhole: true, RTPOnly: true})
	rtp, dtls := []byte{0x80, 0, 0, 0}, []byte{0x16, 0, 0, 0}
	before := rx.count()
	for i := 0; i < 10; i++ {
		_, _ = tx.WriteTo(rtp, rx.conn.LocalAddr())
		_, _ = tx.WriteTo(dtls, rx.conn.LocalAddr())
	}
	rx.waitQuiet(150*time.Millisecond, 5*time.Second)
	if n := rx.count() - before; n != 10 {
		t.Errorf("rtp-only blackhole: %d of 10 DTLS and 10 RTP packets through, want the 10 DTLS", n)
	}
}

// TestMediaDownLoss: impairment of the receiving direction (target to
// client) through the read pump.
func TestMediaDownLoss(t *testing.T) {
	m := newImpairment(t, 7)
	rx := listenImpaired(t, m)
	_ = m.Set("down", Impairment{Loss: 0.2, Direction: DirDown})
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	got := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 1500)
		for {
			_ = rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, _, err := rx.ReadFrom(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	const n = 2000
	buf := make([]byte, 100)
	for i := 0; i < n; i++ {
		_, _ = tx.WriteTo(buf, rx.LocalAddr())
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	r := <-got
	loss := 1 - float64(r)/n
	t.Logf("down loss 0.20: measured %.3f", loss)
	if loss < 0.15 || loss > 0.25 {
		t.Errorf("measured down loss %.3f, want 0.20 ±0.05", loss)
	}
	if up := m.Stats().Up.Dropped; up != 0 {
		t.Errorf("down-only impairment dropped %d upstream packets", up)
	}
}

// TestImpairedConnDeadlineAndClose: read deadlines time out with a timeout
// error, Close unblocks a blocked read and is idempotent.
func TestImpairedConnDeadlineAndClose(t *testing.T) {
	m := newImpairment(t, 8)
	c, err := m.Net().ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _, err = c.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past deadline: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = m.Set("d", Impairment{Delay: time.Hour}) // a held packet must not block Close
	_, _ = c.WriteTo([]byte{1}, c.LocalAddr())
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("read after close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not unblock the read")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := c.WriteTo([]byte{1}, c.LocalAddr()); err == nil {
		t.Error("write after close succeeded")
	}
}

// TestMediaQueueBound: past MaxQueue held packets are dropped, not queued.
func TestMediaQueueBound(t *testing.T) {
	m, err := NewMediaImpairment(9, MediaOptions{MaxQueue: 10})
	if err != nil {
		t.Fatal(err)
	}
	tx := listenImpaired(t, m)
	_ = m.Set("d", Impairment{Delay: time.Hour})
	for i := 0; i < 25; i++ {
		_, _ = tx.WriteTo([]byte{1}, tx.LocalAddr())
	}
	if st := m.Stats().Up; st.Delayed != 10 || st.Overflow != 15 {
		t.Errorf("stats %+v: want 10 delayed, 15 overflow", st)
	}
}

func TestImpairmentValidate(t *testing.T) {
	errs := Impairment{Loss: 1.5, Duplicate: -1, Delay: -time.Second, Direction: "sideways"}.Validate()
	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4: %v", len(errs), errs)
	}
	m := newImpairment(t, 0)
	if err := m.Set("x", Impairment{Loss: 2}); err == nil {
		t.Error("Set accepted loss 2")
	}
	if len(m.Active()) != 0 {
		t.Errorf("a rejected impairment is active: %v", m.Active())
	}
}

func TestMediaMetrics(t *testing.T) {
	m := newImpairment(t, 10)
	reg := prometheus.NewRegistry()
	if err := m.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	tx := listenImpaired(t, m)
	_ = m.Set("bh", Impairment{Blackhole: true, Direction: DirUp})
	for i := 0; i < 5; i++ {
		_, _ = tx.WriteTo([]byte{0x80}, tx.LocalAddr())
	}
	want := `
# HELP telechaos_media_impaired_packets_total Packets through the clients' impaired UDP sockets, by direction and what the impairment did.
# TYPE telechaos_media_impaired_packets_total counter
telechaos_media_impaired_packets_total{action="dropped",direction="up"} 5
telechaos_media_impaired_packets_total{action="seen",direction="up"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want+otherZero()), "telechaos_media_impaired_packets_total"); err != nil {
		t.Error(err)
	}
	if err := m.RegisterMetrics(reg); err == nil {
		t.Error("registered twice")
	}
}

// otherZero lists the zero series of TestMediaMetrics.
func otherZero() string {
	var b strings.Builder
	for _, d := range []string{"down", "up"} {
		for _, a := range []string{"delayed", "dropped", "duplicated", "overflow", "reordered", "seen"} {
			if d == "up" && (a == "dropped" || a == "seen") {
				continue
			}
			fmt.Fprintf(&b, "telechaos_media_impaired_packets_total{action=%q,direction=%q} 0\n", a, d)
		}
	}
	return b.String()
}
