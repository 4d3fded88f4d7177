package scenarios

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// iceBase is a minimal valid scenario for ice_allow to be added to.
const iceBase = "name: x\npopulation: {patients: 2}\nexecutor: {type: closed, vus: 1}\nduration: 1s\n"

// ice_allow: each entry an IP or CIDR of host addresses, refused with its
// file line and index otherwise; an IP stands for itself alone.
func TestICEAllowValidated(t *testing.T) {
	sc, err := Parse("ok.yaml", []byte(iceBase+"ice_allow: [10.1.2.3, 192.168.7.0/24, \"2001:db8::/64\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.ICEPrefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.168.7.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"bogus", "0.0.0.0/0", "10.0.0.0/0", "0.0.0.0", "224.0.0.1", "::/0"} {
		_, err := Parse("bad.yaml", []byte(iceBase+"ice_allow:\n  - 10.0.0.1\n  - \""+bad+"\"\n"))
		if err == nil || !strings.Contains(err.Error(), "bad.yaml:7") || !strings.Contains(err.Error(), "ice_allow[1]") {
			t.Errorf("ice_allow %q: err %v, want it refused naming bad.yaml:7 and ice_allow[1]", bad, err)
		}
	}
	sc, _ = Parse("ok.yaml", []byte(iceBase))
	if err := sc.Set("ice_allow=10.0.0.1,10.0.0.2"); err != nil || len(sc.ICEAllow) != 2 {
		t.Errorf("--set ice_allow: %v %v", sc.ICEAllow, err)
	}
}
