package publishing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// UploadStore keeps resumable uploads (tus) as files and hashes each upload as its bytes
// arrive, so that the torrent exists the moment the last byte lands. The hash state is saved
// beside the file; after a restart the upload resumes and only the bytes written since the
// last save are read again.
type UploadStore struct {
	files filestore.FileStore
	dir   string

	// Rejected, when set, hears of an upload refused for its content, before the client does.
	Rejected func(ctx context.Context, id string, reason error)
}

// stateEvery is how many bytes a long PATCH writes between saves of the hash state.
const stateEvery = 32 << 20

// NewUploadStore keeps uploads under dir.
func NewUploadStore(dir string) (*UploadStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("upload directory: %w", err)
	}
	fs := filestore.New(dir)
	fs.DirModePerm, fs.FileModePerm = 0o750, 0o640
	return &UploadStore{files: fs, dir: dir}, nil
}

// UseIn registers the store with a tus handler's composer.
func (s *UploadStore) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
}

// Path is where an upload's bytes are.
func (s *UploadStore) Path(id string) string { return filepath.Join(s.dir, id) }

func (s *UploadStore) statePath(id string) string { return filepath.Join(s.dir, id+".hash") }

// NewUpload starts an upload and its hash state.
func (s *UploadStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.SizeIsDeferred || info.Size <= 0 {
		return nil, handler.NewError("ERR_EMPTY_FILE", "the file is empty: choose a file with content", http.StatusBadRequest)
	}
	h, err := seeding.NewHasher(seeding.PieceLength(info.Size))
	if err != nil {
		return nil, err
	}
	if info.ID == "" {
		return nil, errors.New("upload without an id")
	}
	if err := s.createFiles(info); err != nil {
		s.remove(info.ID)
		return nil, storageError(err)
	}
	if err := s.saveState(info.ID, h); err != nil {
		s.remove(info.ID)
		return nil, storageError(err)
	}
	up, err := s.files.GetUpload(ctx, info.ID)
	if err != nil {
		return nil, err
	}
	return &hashedUpload{Upload: up, store: s, id: info.ID}, nil
}

// createFiles makes an upload's empty file and the .info file tus's filestore reads back. The
// filestore's own NewUpload leaves the .info file's descriptor open when writing it fails (a
// full disk), so the files are made here, closed on every path.
func (s *UploadStore) createFiles(info handler.FileInfo) error {
	info.Storage = map[string]string{"Type": "filestore", filestore.StorageKeyPath: s.Path(info.ID),
		filestore.StorageKeyInfoPath: s.Path(info.ID) + ".info"}
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := writeFile(s.Path(info.ID), nil); err != nil {
		return err
	}
	return writeFile(s.Path(info.ID)+".info", data)
}

// writeFile creates or truncates name and writes data to it, closing it whatever happens.
func writeFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// storageError turns a full disk into a 507 with a plain message: the error itself names paths
// on the server, which clients are not shown.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return handler.NewError("ERR_STORAGE_FULL", "the server has no room left for this upload: try again later", http.StatusInsufficientStorage)
	}
	return err
}

// CheckRoom reports catalog.ErrStorageFull when a file of size bytes would not fit in the free space
// of the upload directory, so that an upload that cannot finish is refused before it starts.
func (s *UploadStore) CheckRoom(size int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return fmt.Errorf("free space of the upload directory: %w", err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if size > free {
		return fmt.Errorf("%w: the file is %d bytes and the server has %d bytes free; try again later", catalog.ErrStorageFull, size, free)
	}
	return nil
}

// GetUpload reopens an upload, in this process or after a restart.
func (s *UploadStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	up, err := s.files.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &hashedUpload{Upload: up, store: s, id: id}, nil
}

// AsTerminatableUpload lets clients cancel an upload (tus termination).
func (s *UploadStore) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*hashedUpload)
}

func (s *UploadStore) saveState(id string, h *seeding.Hasher) error {
	b, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	return s.writeState(id, b)
}

// writeState replaces the upload's saved hash state with b.
func (s *UploadStore) writeState(id string, b []byte) error {
	tmp := s.statePath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, s.statePath(id))
}

// hasher restores the hash state and brings it up to offset by reading the bytes written since
// the state was saved (those of a process that died mid-request).
func (s *UploadStore) hasher(id string, offset int64) (*seeding.Hasher, error) {
	b, err := os.ReadFile(s.statePath(id))
	if err != nil {
		return nil, fmt.Errorf("hash state of upload %s: %w", id, err)
	}
	h, err := seeding.RestoreHasher(b)
	if err != nil {
		return nil, err
	}
	if h.Len() > offset { // cannot happen with saves that follow the writes; start over
		if h, err = seeding.NewHasher(h.PieceLength()); err != nil {
			return nil, err
		}
	}
	if h.Len() < offset {
		f, err := os.Open(s.Path(id))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := io.Copy(h, io.NewSectionReader(f, h.Len(), offset-h.Len())); err != nil {
			return nil, fmt.Errorf("rehash upload %s: %w", id, err)
		}
	}
	return h, nil
}

// Hashes returns the hashes of a finished upload's bytes.
func (s *UploadStore) Hashes(ctx context.Context, id string) (seeding.Hashes, error) {
	up, err := s.files.GetUpload(ctx, id)
	if err != nil {
		return seeding.Hashes{}, err
	}
	info, err := up.GetInfo(ctx)
	if err != nil {
		return seeding.Hashes{}, err
	}
	h, err := s.hasher(id, info.Offset)
	if err != nil {
		return seeding.Hashes{}, err
	}
	return h.Sum(), nil
}

// ContentType sniffs a stored upload's type from its first bytes.
func (s *UploadStore) ContentType(id string) (string, error) {
	f, err := os.Open(s.Path(id))
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return SniffMedia(head[:n])
}

type hashedUpload struct {
	handler.Upload
	store *UploadStore
	id    string
}

// WriteChunk appends the bytes to the file and to the hash. Bytes are hashed only once the
// file has them, so the saved state never runs ahead of the file.
func (u *hashedUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if offset == 0 {
		br := bufio.NewReaderSize(src, 4096)
		head, _ := br.Peek(512)
		if _, err := SniffMedia(head); err != nil {
			if u.store.Rejected != nil {
				u.store.Rejected(ctx, u.id, err)
			}
			return 0, handler.NewError("ERR_UNSUPPORTED_MEDIA", err.Error(), http.StatusUnsupportedMediaType)
		}
		src = br
	}
	h, err := u.store.hasher(u.id, offset)
	if err != nil {
		return 0, err
	}
	lr := &laggedHasher{r: src, h: h, saved: h.Len(), save: func(state []byte) error { return u.store.writeState(u.id, state) }}
	n, werr := u.Upload.WriteChunk(ctx, offset, lr)
	if err := lr.finish(n); err != nil {
		return n, storageError(err)
	}
	if err := u.store.saveState(u.id, h); err != nil {
		return n, storageError(err)
	}
	return n, storageError(werr)
}

// Terminate removes the upload's file and its hash state.
func (u *hashedUpload) Terminate(ctx context.Context) error {
	os.Remove(u.store.statePath(u.id))
	return u.store.files.AsTerminatableUpload(u.Upload).Terminate(ctx)
}

// laggedHasher feeds the hasher the bytes of each Read only when the next Read comes: by then
// the copy loop has written them to the file.
type laggedHasher struct {
	r       io.Reader
	h       *seeding.Hasher
	pending []byte
	read    int64 // bytes returned by Read
	hashed  int64 // bytes given to the hasher
	saved   int64 // bytes the last saved state stands for
	save    func(state []byte) error
	err     error
}

func (l *laggedHasher) Read(p []byte) (int, error) {
	if len(l.pending) > 0 {
		l.h.Write(l.pending)
		l.hashed += int64(len(l.pending))
		l.pending = nil
		// Saved as of the newest batch hashed, without waiting for those in flight: a restart
		// rehashes the rest from the file.
		if l.h.Len()-l.saved >= stateEvery {
			if state, at, ok := l.h.Checkpoint(); ok && at > l.saved {
				if err := l.save(state); err != nil {
					l.err = err
					return 0, err
				}
				l.saved = at
			}
		}
	}
	n, err := l.r.Read(p)
	l.pending = p[:n]
	l.read += int64(n)
	return n, err
}

// finish hashes the last bytes read, up to the n the file took.
func (l *laggedHasher) finish(n int64) error {
	if l.err != nil {
		return l.err
	}
	rest := n - l.hashed
	if rest < 0 || rest > int64(len(l.pending)) {
		return errors.New("upload: hashed and written byte counts disagree")
	}
	l.h.Write(l.pending[:rest])
	l.pending = nil
	return nil
}

// mediaSignatures are the file types an episode may be, beyond what http.DetectContentType knows.
var mediaSignatures = []struct {
	offset int
	magic  []byte
	typ    string
}{
	{0, []byte("fLaC"), "audio/flac"},
	{0, []byte{0x1A, 0x45, 0xDF, 0xA3}, "video/x-matroska"},
	{0, []byte("7z\xBC\xAF\x27\x1C"), "application/x-7z-compressed"},
	{0, []byte("\xFD7zXZ\x00"), "application/x-xz"},
	{0, []byte("BZh"), "application/x-bzip2"},
	{0, []byte{0x28, 0xB5, 0x2F, 0xFD}, "application/zstd"},
	{257, []byte("ustar"), "application/x-tar"},
	{4, []byte("ftypM4A"), "audio/mp4"},
	{4, []byte("ftyp"), "video/mp4"},
	{0, []byte{0xFF, 0xFB}, "audio/mpeg"},
	{0, []byte{0xFF, 0xF3}, "audio/mpeg"},
	{0, []byte{0xFF, 0xF2}, "audio/mpeg"},
	{0, []byte{0xFF, 0xF1}, "audio/aac"},
	{0, []byte{0xFF, 0xF9}, "audio/aac"},
}

// SniffMedia tells the type of a file from its first bytes and refuses anything that is not
// audio, video or an archive: the header a client sends is not trusted.
func SniffMedia(head []byte) (string, error) {
	for _, s := range mediaSignatures {
		if len(head) >= s.offset+len(s.magic) && bytes.Equal(head[s.offset:s.offset+len(s.magic)], s.magic) {
			return s.typ, nil
		}
	}
	if len(head) >= 188*2 && head[0] == 0x47 && head[188] == 0x47 {
		return "video/mp2t", nil
	}
	t := http.DetectContentType(head)
	switch {
	case bytes.HasPrefix([]byte(t), []byte("audio/")), bytes.HasPrefix([]byte(t), []byte("video/")):
		return t, nil
	}
	switch t {
	case "application/ogg", "application/zip", "application/x-gzip", "application/x-rar-compressed":
		return t, nil
	}
	return "", fmt.Errorf("%w: the file is %s, not audio, video or an archive (zip, tar, 7z, gzip, rar)", catalog.ErrInvalid, t)
}
