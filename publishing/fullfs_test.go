package publishing

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
)

// fill writes a file until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// On a full disk creating an upload fails with 507 and a plain message, and leaves no file
// descriptor open and no file behind (tus's filestore leaked the descriptor of the .info file
// it could not write).
func TestNewUploadOnAFullDisk(t *testing.T) {
	ctx := context.Background()
	dir := testkit.SmallDisk(t, "256k")
	store, err := NewUploadStore(filepath.Join(dir, "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, dir)
	before := openFiles(t)
	for i := range 20 {
		id := strings.Repeat(string(rune('a'+i)), 32)
		_, err := store.NewUpload(ctx, handler.FileInfo{ID: id, Size: 1000})
		var he handler.Error
		if !errors.As(err, &he) || he.HTTPResponse.StatusCode != http.StatusInsufficientStorage || strings.Contains(he.Error(), dir) {
			t.Fatalf("NewUpload on a full disk: %v, want a 507 without the path", err)
		}
	}
	if after := openFiles(t); after > before {
		t.Errorf("%d file descriptors left open by 20 failed creations", after-before)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// CheckRoom refuses an upload larger than the free space, before any byte is sent.
func TestCheckRoom(t *testing.T) {
	dir := testkit.SmallDisk(t, "1m")
	store, err := NewUploadStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckRoom(512 << 10); err != nil {
		t.Errorf("512 KiB on an empty 1 MiB disk: %v", err)
	}
	err = store.CheckRoom(2 << 20)
	if !errors.Is(err, catalog.ErrStorageFull) || strings.Contains(err.Error(), dir) {
		t.Errorf("2 MiB on a 1 MiB disk: %v, want catalog.ErrStorageFull without the path", err)
	}
}
