package bench

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// pinSelf sets the CPU affinity of every thread of this process to cores
// (threads started later inherit it from their creator). An empty list
// restores all cores. Best effort: benchmarks still run unpinned.
func pinSelf(cores ...int) {
	var mask [16]uint64 // 1024 CPUs
	if len(cores) == 0 {
		for c := range runtime.NumCPU() {
			mask[c/64] |= 1 << (c % 64)
		}
	}
	for _, c := range cores {
		mask[c/64] |= 1 << (c % 64)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	}
}
