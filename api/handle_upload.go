package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5"
	tus "github.com/tus/tusd/v2/pkg/handler"
	expslog "golang.org/x/exp/slog"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// uploadBase is where the tus endpoint lives.
const uploadBase = "/api/uploads/"

type uploadKey struct{}

// newTusHandler builds the resumable-upload endpoint over the hashing store.
func (s *Server) newTusHandler() (*tus.UnroutedHandler, error) {
	composer := tus.NewStoreComposer()
	s.uploads.UseIn(composer)
	// One request at a time per upload, across every serve process; a new PATCH takes over from
	// one stuck on a dead connection.
	(&catalog.UploadLocker{DB: s.db}).UseIn(composer)
	return tus.NewUnroutedHandler(tus.Config{
		BasePath:                  uploadBase,
		StoreComposer:             composer,
		MaxSize:                   s.cfg.UploadMaxBytes,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &tus.CorsConfig{Disable: true},
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)), // requests are logged by our middleware
		PreUploadCreateCallback:   s.beforeUploadCreate,
		PreFinishResponseCallback: s.afterUploadFinish,
	})
}

// uploadIDPath leaves only the upload id in the URL path, as tus's handlers expect.
func uploadIDPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = chi.URLParam(r, "uploadID")
		r2.URL.RawPath = ""
		next.ServeHTTP(w, r2)
	})
}

func plainError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// requireUploader lets only creators and admins reach the upload endpoint, logged in or with
// an API token of the write scope.
func (s *Server) requireUploader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		t := tokenFrom(r.Context())
		switch {
		case a == nil:
			plainError(w, http.StatusUnauthorized, "log in first: uploads need a creator session or an API token (Authorization: Bearer <token>)")
		case t != nil && !t.Allows(catalog.ScopeWrite):
			requireScope(catalog.ScopeWrite)(next).ServeHTTP(w, r)
		case !a.CanManageShows():
			plainError(w, http.StatusForbidden, "this account may not upload")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// uploadTarget is a checked upload request: the episode it fills and the cleaned file name.
type uploadTarget struct {
	episode  catalog.Episode
	filename string
}

// checkUploadCreate validates a creation request before tus sees it: the size against the
// limit, the file name, and that the episode is the account's own and has no file yet.
func (s *Server) checkUploadCreate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
		switch {
		case r.Header.Get("Upload-Length") == "":
			plainError(w, http.StatusBadRequest, "Upload-Length: the file size is required")
			return
		case err != nil || size < 0:
			plainError(w, http.StatusBadRequest, "Upload-Length: must be the file size in bytes")
			return
		case size == 0:
			plainError(w, http.StatusBadRequest, "the file is empty: choose a file with content")
			return
		case size > s.cfg.UploadMaxBytes:
			plainError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is %s; the limit is %s (%d bytes)",
				humanBytes(size), humanBytes(s.cfg.UploadMaxBytes), s.cfg.UploadMaxBytes))
			return
		}
		if err := s.uploads.CheckRoom(size); errors.Is(err, catalog.ErrStorageFull) {
			plainError(w, http.StatusInsufficientStorage, fmt.Sprintf("the file is %s and the server has no room for it now: try again later", humanBytes(size)))
			return
		} else if err != nil {
			s.serverError(w, r, err)
			return
		}
		meta := parseUploadMetadata(r.Header.Get("Upload-Metadata"))
		episodeID, err := strconv.ParseInt(meta["episode_id"], 10, 64)
		if err != nil || episodeID <= 0 {
			plainError(w, http.StatusBadRequest, "Upload-Metadata: episode_id is required (the episode this file is for)")
			return
		}
		name, err := seeding.CleanName(firstNonEmpty(meta["filename"], meta["name"]))
		if err != nil {
			plainError(w, http.StatusBadRequest, "Upload-Metadata: filename: "+seeding.FailureReason(err))
			return
		}
		ep, err := catalog.FindEpisodeForAccount(r.Context(), s.db, episodeID, *accountFrom(r.Context()))
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			plainError(w, http.StatusForbidden, "episode "+strconv.FormatInt(episodeID, 10)+" is not one of your episodes")
			return
		case err != nil:
			s.serverError(w, r, err)
			return
		}
		if ep.Status != catalog.EpisodeDraft && ep.Status != catalog.EpisodeFailed && ep.Status != catalog.EpisodeUploading {
			plainError(w, http.StatusConflict, "this episode already has its file ("+ep.Status+"); create a new episode for another file")
			return
		}
		ctx := context.WithValue(r.Context(), uploadKey{}, uploadTarget{episode: ep, filename: name})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkUploadOwner refuses requests on uploads of another account's episodes.
func (s *Server) checkUploadOwner(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "uploadID")
		if !uploadIDRE.MatchString(id) {
			plainError(w, http.StatusNotFound, "no such upload")
			return
		}
		err := catalog.CheckUploadOwner(r.Context(), s.db, id, *accountFrom(r.Context()))
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			plainError(w, http.StatusNotFound, "no such upload")
		case errors.Is(err, catalog.ErrForbidden):
			plainError(w, http.StatusForbidden, "this upload belongs to another account")
		case err != nil:
			s.serverError(w, r, err)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// beforeUploadCreate records the upload under an id of ours and marks the episode uploading.
func (s *Server) beforeUploadCreate(hook tus.HookEvent) (tus.HTTPResponse, tus.FileInfoChanges, error) {
	target, ok := hook.Context.Value(uploadKey{}).(uploadTarget)
	if !ok {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tus.NewError("ERR_NO_EPISODE", "no episode for this upload", http.StatusBadRequest)
	}
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	a := accountFrom(hook.Context)
	if err := catalog.StartUpload(hook.Context, s.db, id, target.episode.ID, a.ID, target.filename, hook.Upload.Size); err != nil {
		s.log.Error("start upload", "error", err)
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, err
	}
	meta := tus.MetaData{"filename": target.filename, "episode_id": strconv.FormatInt(target.episode.ID, 10)}
	return tus.HTTPResponse{}, tus.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// afterUploadFinish makes the torrent the moment the last byte lands, before the client hears
// that the upload is complete.
func (s *Server) afterUploadFinish(hook tus.HookEvent) (tus.HTTPResponse, error) {
	if err := s.publisher.Finish(hook.Context, hook.Upload.ID); err != nil {
		s.log.Error("finish upload", "upload_id", hook.Upload.ID, "error", err)
		var fe catalog.FieldErrors
		if errors.Is(err, catalog.ErrInvalid) || errors.As(err, &fe) {
			return tus.HTTPResponse{}, tus.NewError("ERR_REJECTED", err.Error(), http.StatusUnprocessableEntity)
		}
		return tus.HTTPResponse{}, err
	}
	return tus.HTTPResponse{}, nil
}

// uploadRejected fails the episode of an upload refused for its content, with the reason the
// creator reads.
func (s *Server) uploadRejected(ctx context.Context, id string, reason error) {
	msg := "The file is not audio, video or an archive."
	if err := catalog.FailUpload(context.WithoutCancel(ctx), s.db, id, msg); err != nil {
		s.log.Error("fail upload", "upload_id", id, "error", err)
	}
}

// handleUploadDelete cancels an upload; the episode goes back to draft.
func (s *Server) handleUploadDelete() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "uploadID")
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		s.tus.DelFile(ww, r)
		if ww.Status() == http.StatusNoContent {
			if err := catalog.CancelUpload(r.Context(), s.db, id); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				s.log.Error("cancel upload", "upload_id", id, "error", err)
			}
		}
	}
}

// parseUploadMetadata reads tus's Upload-Metadata: comma-separated "key base64value" pairs.
func parseUploadMetadata(h string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), " ")
		if k == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		out[k] = string(b)
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// humanBytes writes a size the way people read it: 20.0 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
