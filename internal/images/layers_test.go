package images

import (
	"archive/tar"
	"io"
	"slices"
	"testing"
)

type entryInfo struct {
	mode     int64
	typ      byte
	uid, gid int
}

func tarEntries(t *testing.T, r io.Reader) ([]string, map[string]entryInfo) {
	t.Helper()
	tr := tar.NewReader(r)
	var names []string
	info := map[string]entryInfo{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, info
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want the Unix epoch", h.Name, h.ModTime)
		}
		names = append(names, h.Name)
		info[h.Name] = entryInfo{h.Mode, h.Typeflag, h.Uid, h.Gid}
	}
}

func TestLayerIsSortedWithParentsAndZeroTimes(t *testing.T) {
	l1, err := newLayer(baseFiles([]byte("certs")))
	if err != nil {
		t.Fatal(err)
	}
	reversed := baseFiles([]byte("certs"))
	slices.Reverse(reversed)
	l2, err := newLayer(reversed)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("the same files in another order give another layer: %s vs %s", d1, d2)
	}
	rc, err := l1.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	names, info := tarEntries(t, rc)
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
	for name, want := range map[string]entryInfo{
		"etc/":                              {0o755, tar.TypeDir, 0, 0},
		"etc/ssl/certs/":                    {0o755, tar.TypeDir, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, tar.TypeReg, 0, 0},
		"tmp/":                              {0o1777, tar.TypeDir, 0, 0},
		"home/nonroot/":                     {0o700, tar.TypeDir, 65532, 65532},
		"usr/local/bin/":                    {0o755, tar.TypeDir, 0, 0},
	} {
		if got, ok := info[name]; !ok || got != want {
			t.Errorf("%s: %+v (present %v), want %+v", name, got, ok, want)
		}
	}
}
