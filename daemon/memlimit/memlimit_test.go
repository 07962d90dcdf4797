package memlimit

import (
	"testing"
	"testing/fstest"
)

func TestCgroupLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name  string
		fs    fstest.MapFS
		want  int64
		found bool
	}{
		{"v2 own group (systemd MemoryMax=)", fstest.MapFS{
			"proc/self/cgroup": file("0::/system.slice/roster.service\n"),
			"sys/fs/cgroup/system.slice/roster.service/memory.max": file("536870912\n"),
		}, 536870912, true},
		{"v2 container: namespace root", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("268435456\n"),
		}, 268435456, true},
		{"v2 group path not visible, root is", fstest.MapFS{
			"proc/self/cgroup":         file("0::/kubepods/pod1/abc\n"),
			"sys/fs/cgroup/memory.max": file("1073741824"),
		}, 1073741824, true},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, false},
		{"v1", fstest.MapFS{
			"proc/self/cgroup": file("12:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n"),
			"sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": file("134217728\n"),
		}, 134217728, true},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0, false},
		{"garbage", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, 0, false},
		{"no cgroup file", fstest.MapFS{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := CgroupLimit(tt.fs)
			if got != tt.want || found != tt.found {
				t.Fatalf("CgroupLimit = %d, %t; want %d, %t", got, found, tt.want, tt.found)
			}
		})
	}
}
