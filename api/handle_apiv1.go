package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/seeding"
)

// handleAPINotFound answers an API path that names nothing in the API's error body.
func (s *Server) handleAPINotFound() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, fmt.Errorf("no API route %s: %w", r.URL.Path, catalog.ErrNotFound))
	}
}

// handleAPIMethodNotAllowed answers a method an API path does not take.
func (s *Server) handleAPIMethodNotAllowed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		apiErrorBody(w, http.StatusMethodNotAllowed, "method_not_allowed", "This address does not take "+r.Method+" requests.", "")
	}
}

// requireAPIAccount answers 401 to a request with neither a token nor a session.
func (s *Server) requireAPIAccount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accountFrom(r.Context()) == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fanseed"`)
			apiErrorBody(w, http.StatusUnauthorized, "unauthorized", "Send an API token: Authorization: Bearer <token>.", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError answers with the one error body of the JSON API, the status from statusOf. A 5xx
// is logged and says nothing of the cause; bad input names the field.
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	var fe catalog.FieldErrors
	var expired *catalog.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		w.Header().Set("WWW-Authenticate", `Bearer realm="fanseed", error="invalid_token", error_description="expired"`)
		apiErrorBody(w, status, "token_expired", "The API token expired at "+expired.At.UTC().Format("2006-01-02 15:04")+
			" UTC. Create a new one at /account/tokens.", "")
		return
	case errors.As(err, &fe) && (status == http.StatusBadRequest || status == http.StatusConflict):
		code := "invalid"
		if status == http.StatusConflict {
			code = "conflict"
		}
		field, msg := fieldMessage(fe)
		apiErrorBody(w, status, code, msg, field)
		return
	}
	switch status {
	case http.StatusServiceUnavailable:
		s.unavailable(w, r, err)
	case http.StatusInsufficientStorage:
		apiErrorBody(w, status, "storage_full", errStorageFullText, "")
	case http.StatusInternalServerError:
		s.log.ErrorContext(r.Context(), "api request failed", "path", r.URL.Path, "error", err, "request_id", requestID(r))
		apiErrorBody(w, status, "internal", "Something went wrong on our side. Please try again.", "")
	case http.StatusNotFound:
		apiErrorBody(w, status, "not_found", "There is nothing here, or it is not yours to see.", "")
	case http.StatusForbidden:
		apiErrorBody(w, status, "forbidden", "Your account may not do this.", "")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="fanseed", error="invalid_token"`)
		apiErrorBody(w, status, "unauthorized", "The API token is wrong or revoked.", "")
	case http.StatusBadRequest:
		apiErrorBody(w, status, "invalid", userMessage(err.Error()), "")
	default:
		apiErrorBody(w, status, strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), userMessage(err.Error()), "")
	}
}

// fieldMessage is the first field in order with its message, and the other fields named.
func fieldMessage(fe catalog.FieldErrors) (field, msg string) {
	fields := slices.Sorted(maps.Keys(fe))
	msg = fe[fields[0]]
	if len(fields) > 1 {
		msg += " Also wrong: " + strings.Join(fields[1:], ", ") + "."
	}
	return fields[0], msg
}

// apiErrorBody writes {"error": {"code": ..., "message": ..., "field": ...}}, field only when
// one field of the request is wrong.
func apiErrorBody(w http.ResponseWriter, status int, code, message, field string) {
	type body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field,omitempty"`
		} `json:"error"`
	}
	var b body
	b.Error.Code, b.Error.Message, b.Error.Field = code, message, field
	writeJSON(w, status, b)
}

// API list pages: limit is 1 to maxPageLimit (defaultPageLimit when absent), and the cursor is
// opaque to clients: the last id of the previous page.
const (
	defaultPageLimit = 50
	maxPageLimit     = 100
)

type page struct {
	after int64
	limit int
}

func readPage(r *http.Request) (page, error) {
	p := page{limit: defaultPageLimit}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return p, fmt.Errorf("%w: limit must be a whole number from 1 to %d", billing.ErrInvalid, maxPageLimit)
		}
		p.limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		id, ok := strings.CutPrefix(string(b), "id:")
		if err == nil && ok {
			p.after, err = strconv.ParseInt(id, 10, 64)
		}
		if err != nil || !ok || p.after < 0 {
			return p, fmt.Errorf("%w: cursor is not one this API gave", billing.ErrInvalid)
		}
	}
	return p, nil
}

func cursorFor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("id:" + strconv.FormatInt(id, 10)))
}

// listJSON is every list's body: a page of items and the cursor of the next page, null at the end.
type listJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf cuts items (fetched with limit+1) to the page and sets the next cursor.
func pageOf[T any](items []T, limit int, id func(T) int64) listJSON[T] {
	out := listJSON[T]{Data: items}
	if len(items) > limit {
		out.Data = items[:limit]
		c := cursorFor(id(items[limit-1]))
		out.NextCursor = &c
	}
	if out.Data == nil {
		out.Data = []T{}
	}
	return out
}

type showJSON struct {
	ID          int64     `json:"id"`
	Slug        string    `json:"slug"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Currency    string    `json:"currency"`
	FundingGoal int64     `json:"funding_goal"`
	URL         string    `json:"url"`
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) showJSONOf(sh catalog.Show) showJSON {
	return showJSON{ID: sh.ID, Slug: sh.Slug, Title: sh.Title, Description: sh.Description, Currency: sh.Currency,
		FundingGoal: sh.FundingGoal, URL: s.publisher.BaseURL + "/s/" + sh.Slug, CreatedAt: sh.CreatedAt}
}

// handleAPIShows lists the shows the account manages (all for an admin).
func (s *Server) handleAPIShows() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		shows, err := catalog.ShowsPage(r.Context(), s.db, *accountFrom(r.Context()), p.after, p.limit+1)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out := make([]showJSON, len(shows))
		for i, sh := range shows {
			out[i] = s.showJSONOf(sh)
		}
		writeJSON(w, http.StatusOK, pageOf(out, p.limit, func(v showJSON) int64 { return v.ID }))
	}
}

func (s *Server) apiShow(r *http.Request) (catalog.Show, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "showID"), 10, 64)
	if err != nil {
		return catalog.Show{}, fmt.Errorf("show %q: %w", chi.URLParam(r, "showID"), catalog.ErrNotFound)
	}
	return catalog.FindShowByID(r.Context(), s.db, id, *accountFrom(r.Context()))
}

func (s *Server) handleAPIShow() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.showJSONOf(sh))
	}
}

type torrentJSON struct {
	InfoHash    string `json:"infohash"`
	Name        string `json:"name"`
	Length      int64  `json:"length"`
	PieceLength int64  `json:"piece_length"`
	ContentType string `json:"content_type"`
	TorrentURL  string `json:"torrent_url"`
	Magnet      string `json:"magnet"`
	WebSeed     string `json:"web_seed"`
}

type episodeJSON struct {
	ID          int64  `json:"id"`
	ShowID      int64  `json:"show_id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Status      string `json:"status"`
	// FailureReason says why a failed episode failed, for people; empty otherwise.
	FailureReason string       `json:"failure_reason"`
	CreatedAt     time.Time    `json:"created_at"`
	PublishedAt   *time.Time   `json:"published_at"`
	Torrent       *torrentJSON `json:"torrent"`
	Stats         struct {
		Completed   int64 `json:"completed"`
		Downloaders int64 `json:"downloaders"`
	} `json:"stats"`
}

// episodeJSONs are the episodes with their published torrents and tracker counts.
func (s *Server) episodeJSONs(ctx context.Context, db seeding.DBTX, eps []catalog.Episode) ([]episodeJSON, error) {
	ids := make([]int64, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	torrents, err := seeding.PublishedTorrents(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	out := make([]episodeJSON, len(eps))
	for i, e := range eps {
		ej := episodeJSON{ID: e.ID, ShowID: e.ShowID, Title: e.Title, Description: e.Description, Status: e.Status,
			FailureReason: e.FailureReason, CreatedAt: e.CreatedAt, PublishedAt: e.PublishedAt}
		if t, ok := torrents[e.ID]; ok {
			fe := s.fanEpisode(e, t)
			ej.Torrent = &torrentJSON{InfoHash: t.InfoHashHex(), Name: t.Name, Length: t.Length, PieceLength: t.PieceLength,
				ContentType: t.ContentType, TorrentURL: fe.TorrentURL, Magnet: string(fe.Magnet), WebSeed: fe.WebSeed}
			ej.Stats.Completed, ej.Stats.Downloaders = t.Completed, t.Downloaders
		}
		out[i] = ej
	}
	return out, nil
}

// handleAPIEpisodes lists a show's episodes with their published torrent and its tracker counts.
func (s *Server) handleAPIEpisodes() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		eps, err := catalog.EpisodesPage(r.Context(), s.db, sh.ID, p.after, p.limit+1)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out, err := s.episodeJSONs(r.Context(), s.db, eps)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, pageOf(out, p.limit, func(v episodeJSON) int64 { return v.ID }))
	}
}

type donationJSON struct {
	ID          int64      `json:"id"`
	ShowID      int64      `json:"show_id"`
	EpisodeID   *int64     `json:"episode_id"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Monthly     bool       `json:"monthly"`
	Anonymous   bool       `json:"anonymous"`
	DisplayName string     `json:"display_name"`
	Message     string     `json:"message"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	PaidAt      *time.Time `json:"paid_at"`
}

// handleAPIDonations lists the paid and refunded donations to the account's shows (every show
// for an admin). A donor who chose to stay anonymous stays so here too.
func (s *Server) handleAPIDonations() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		a := accountFrom(r.Context())
		shows, err := catalog.ListShows(r.Context(), s.db, *a)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		ids := make([]int64, len(shows))
		for i, sh := range shows {
			ids[i] = sh.ID
		}
		ds, err := billing.DonationsPage(r.Context(), s.db, ids, a.IsAdmin(), p.after, p.limit+1)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out := make([]donationJSON, len(ds))
		for i, d := range ds {
			out[i] = donationJSON{ID: d.ID, ShowID: d.ShowID, EpisodeID: d.EpisodeID, Amount: d.Amount, Currency: d.Currency,
				Monthly: d.Monthly, Anonymous: d.Anonymous, DisplayName: d.DisplayName, Message: d.Message, Status: d.Status,
				CreatedAt: d.CreatedAt, PaidAt: d.PaidAt}
			if d.Anonymous {
				out[i].DisplayName = ""
			}
		}
		writeJSON(w, http.StatusOK, pageOf(out, p.limit, func(v donationJSON) int64 { return v.ID }))
	}
}

type partyJSON struct {
	ID        int64  `json:"id"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Statement string `json:"statement"`
}

// handleAPIStatements lists the parties whose statements the account may read.
func (s *Server) handleAPIStatements() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := readPage(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		parties, err := billing.StatementParties(r.Context(), s.db, viewerOf(accountFrom(r.Context())))
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		slices.SortFunc(parties, func(a, b billing.Party) int { return int(a.ID - b.ID) })
		out := []partyJSON{}
		for _, pa := range parties {
			if pa.ID > p.after && len(out) <= p.limit {
				out = append(out, partyJSON{ID: pa.ID, Kind: pa.Kind, Name: pa.Name,
					Statement: "/api/v1/statements/" + strconv.FormatInt(pa.ID, 10)})
			}
		}
		writeJSON(w, http.StatusOK, pageOf(out, p.limit, func(v partyJSON) int64 { return v.ID }))
	}
}

// handleAPIStatement is a party's statement as JSON, the same as /statements/{party}.json.
func (s *Server) handleAPIStatement() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		party, rng, err := s.loadStatementParty(r, chi.URLParam(r, "partyID"))
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		st, err := billing.BuildStatement(r.Context(), s.db, party, rng)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, statementJSONOf(st))
	}
}
