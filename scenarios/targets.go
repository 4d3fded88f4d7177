package scenarios

// KnownTarget reports whether a target reference other than "embedded" and
// an http(s) URL names a target a driver registered ("lab://bench-3"). The
// spec imports nothing of the engine: package harness sets it to the
// target registry's check (harness/target); nil admits none.
var KnownTarget func(ref string) bool

func registeredTarget(ref string) bool { return KnownTarget != nil && KnownTarget(ref) }
