package chaos

import (
	"net"
	"testing"
	"time"
)

// BenchmarkUDPWrite measures writing one 200-byte packet to a loopback
// receiver that drains in the background: plain socket, impaired socket with
// nothing active (the cost every chaos run pays), with 5% loss and 1%
// duplication, and with a 20ms delay (queue and timer goroutine).
func BenchmarkUDPWrite(b *testing.B) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	cases := []struct {
		name string
		im   *Impairment
	}{{"plain", nil}, {"impaired-idle", nil}, {"impaired-loss-dup", &Impairment{Loss: 0.05, Duplicate: 0.01}}, {"impaired-delay", &Impairment{Delay: 20 * time.Millisecond}}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rx, err := net.ListenUDP("udp4", lo)
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 1500)
				for {
					if _, _, err := rx.ReadFrom(buf); err != nil {
						return
					}
				}
			}()
			var tx interface {
				WriteTo([]byte, net.Addr) (int, error)
				Close() error
			}
			if c.name == "plain" {
				tx, err = net.ListenUDP("udp4", lo)
			} else {
				m, _ := NewMediaImpairment(1, MediaOptions{MaxQueue: 1 << 20})
				if c.im != nil {
					_ = m.Set("x", *c.im)
				}
				tx, err = m.Net().ListenUDP("udp4", lo)
			}
			if err != nil {
				b.Fatal(err)
			}
			msg, to := make([]byte, 200), rx.LocalAddr()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tx.WriteTo(msg, to); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			tx.Close()
			rx.Close()
			<-done
		})
	}
}
