package bench

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Packets per second one consultation costs on loopback: two senders, each
// audio 50/s and video 15/s after the switch, and the clinic forwarding each
// packet to the other participant (one more send).
const (
	senderPPS       = 50 + 15
	consultationPPS = 2 * senderPPS * 2
)

// Floor is the loopback UDP floor.
type Floor struct {
	PacketsPerSecond float64 `json:"packets_per_s"`
	Senders          int     `json:"senders"`
	Consultations    float64 `json:"consultations"` // PacketsPerSecond / consultationPPS
}

// LoopbackFloor measures the most packets/s tight UDP send loops reach on
// 127.0.0.1: one sender per core, each to its own unread socket (the kernel
// drops what overflows; the cost measured is sendto's), with 200-byte
// payloads, about the mean of the media mix. Bounded by d.
func LoopbackFloor(d time.Duration) (Floor, error) {
	n := runtime.NumCPU()
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range n {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return Floor{}, fmt.Errorf("floor receiver: %w", err)
		}
		defer rx.Close()
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return Floor{}, fmt.Errorf("floor sender: %w", err)
		}
		defer tx.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 200)
			var k int64
			for time.Now().Before(deadline) {
				for range 256 { // check the clock every 256 packets
					if _, err := tx.Write(buf); err != nil {
						// ECONNREFUSED can bounce back on loopback; count only sends.
						continue
					}
					k++
				}
			}
			total.Add(k)
		}()
	}
	start := time.Now()
	wg.Wait()
	el := time.Since(start).Seconds()
	pps := float64(total.Load()) / el
	return Floor{PacketsPerSecond: round(pps, 0), Senders: n, Consultations: round(pps/consultationPPS, 1)}, nil
}
