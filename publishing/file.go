package publishing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/fanseed/fanseed/catalog"
)

// PublishFile makes a file on this machine (a stream's recording) a new episode of the show,
// through the same path as an upload: an upload of the show's owner in the store, its bytes
// hashed as they are written, then Finish, so the fleet publishes it like any other.
func (p *Publisher) PublishFile(ctx context.Context, showID int64, in catalog.EpisodeInput, file string) (catalog.Episode, error) {
	show, err := catalog.FindShow(ctx, p.DB, showID)
	if err != nil {
		return catalog.Episode{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return catalog.Episode{}, fmt.Errorf("publish %s: %w", filepath.Base(file), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return catalog.Episode{}, err
	}
	if err := p.Store.CheckRoom(st.Size()); err != nil {
		return catalog.Episode{}, err
	}
	ep, err := catalog.CreateEpisode(ctx, p.DB, showID, in)
	if err != nil {
		return catalog.Episode{}, err
	}
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	name := filepath.Base(file)
	if err := catalog.StartUpload(ctx, p.DB, id, ep.ID, show.OwnerID, name, st.Size()); err != nil {
		return catalog.Episode{}, err
	}
	up, err := p.Store.NewUpload(ctx, handler.FileInfo{ID: id, Size: st.Size(), MetaData: handler.MetaData{"filename": name}})
	if err != nil {
		catalog.FailUpload(ctx, p.DB, id, "The file could not be stored.")
		return catalog.Episode{}, err
	}
	if n, err := up.WriteChunk(ctx, 0, f); err != nil || n != st.Size() {
		catalog.FailUpload(ctx, p.DB, id, "The file could not be stored.")
		return catalog.Episode{}, fmt.Errorf("publish %s: wrote %d of %d bytes: %w", name, n, st.Size(), err)
	}
	if err := p.Finish(ctx, id); err != nil {
		return catalog.Episode{}, err
	}
	return ep, nil
}
