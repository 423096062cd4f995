package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/money"
	"github.com/fanseed/fanseed/seeding"
)

// maxAPIBody bounds a JSON request body of the API.
const maxAPIBody = 64 << 10

// requireAPICreator refuses accounts that manage no shows (partners), in the API's error body.
func (s *Server) requireAPICreator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accountFrom(r.Context()).CanManageShows() {
			apiErrorBody(w, http.StatusForbidden, "forbidden", "Only creator accounts make and change shows, episodes and share plans.", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readJSON reads the request body into v, refusing fields v does not have, with an error that
// names the field at fault. It returns the raw body too (for idempotency keys).
func readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: the body is over %d bytes", catalog.ErrInvalid, maxAPIBody)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case err == nil && dec.More():
		return nil, fmt.Errorf("%w: the body must be one JSON object", catalog.ErrInvalid)
	case err == nil:
		return raw, nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return nil, catalog.FieldErrors{typeErr.Field: fmt.Sprintf("%s must be %s, not %s.", typeErr.Field, jsonTypeName(typeErr.Type.String()), typeErr.Value)}
	case errors.As(err, &typeErr):
		return nil, fmt.Errorf("%w: the body must be a JSON object", catalog.ErrInvalid)
	case errors.As(err, &syntaxErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: the body is not valid JSON (send a JSON object with Content-Type: application/json)", catalog.ErrInvalid)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return nil, catalog.FieldErrors{name: fmt.Sprintf("There is no field %s here.", name)}
	}
	return nil, fmt.Errorf("%w: %v", catalog.ErrInvalid, err)
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// created answers a create with 201 and the created resource. With an Idempotency-Key header,
// create runs at most once per key (for a day): a retry with the same key and body gets the
// first answer again, with Idempotent-Replayed: true.
func (s *Server) created(w http.ResponseWriter, r *http.Request, raw []byte, create func(db seeding.DBTX) (any, error)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		v, err := create(s.db)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, v)
		return
	}
	request := append([]byte(r.Method+" "+r.URL.Path+"\n"), raw...)
	ans, replayed, err := catalog.Idempotent(r.Context(), s.db, accountFrom(r.Context()).ID, key, request,
		func(tx pgx.Tx) (catalog.Answer, error) {
			v, err := create(tx)
			if err != nil {
				return catalog.Answer{}, err
			}
			b, err := json.Marshal(v)
			return catalog.Answer{Status: http.StatusCreated, Body: append(b, '\n')}, err
		})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(ans.Status)
	w.Write(ans.Body)
}

// showBody is a show as the API takes it; absent fields keep their value in an edit.
type showBody struct {
	Slug        *string `json:"slug"`
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Currency    *string `json:"currency"`
	FundingGoal *int64  `json:"funding_goal"`
}

// input is the body over the show's current values as the show form types them.
func (b showBody) input(cur catalog.Show) (catalog.ShowInput, error) {
	in := catalog.ShowInput{Slug: cur.Slug, Title: cur.Title, Description: cur.Description, Currency: cur.Currency}
	goal := cur.FundingGoal
	for _, f := range []struct {
		to   *string
		from *string
	}{{&in.Slug, b.Slug}, {&in.Title, b.Title}, {&in.Description, b.Description}, {&in.Currency, b.Currency}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	if b.FundingGoal != nil {
		goal = *b.FundingGoal
	}
	if goal < 0 {
		return in, catalog.FieldErrors{"funding_goal": "Funding goal cannot be negative."}
	}
	if c, err := money.LookupCurrency(in.Currency); err == nil && goal > 0 {
		in.FundingGoal = c.Format(goal)
	}
	return in, nil
}

// handleAPIShowCreate makes a show owned by the account.
func (s *Server) handleAPIShowCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b showBody
		raw, err := readJSON(w, r, &b)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		in, err := b.input(catalog.Show{})
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		s.created(w, r, raw, func(db seeding.DBTX) (any, error) {
			sh, err := catalog.CreateShow(r.Context(), db, accountFrom(r.Context()).ID, in)
			if err != nil {
				return nil, err
			}
			return s.showJSONOf(sh), nil
		})
	}
}

// handleAPIShowUpdate changes the fields of a show the body names.
func (s *Server) handleAPIShowUpdate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		var b showBody
		if _, err := readJSON(w, r, &b); err != nil {
			s.apiError(w, r, err)
			return
		}
		in, err := b.input(sh)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		sh, err = catalog.UpdateShow(r.Context(), s.db, sh.ID, in)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.showJSONOf(sh))
	}
}

// episodeBody is an episode as the API takes it; absent fields keep their value in an edit.
type episodeBody struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
}

func (b episodeBody) input(cur catalog.Episode) catalog.EpisodeInput {
	in := catalog.EpisodeInput{Title: cur.Title, Description: cur.Description}
	if b.Title != nil {
		in.Title = *b.Title
	}
	if b.Description != nil {
		in.Description = *b.Description
	}
	return in
}

// handleAPIEpisodeCreate adds a draft episode to a show: its file comes with a tus upload.
func (s *Server) handleAPIEpisodeCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		var b episodeBody
		raw, err := readJSON(w, r, &b)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		s.created(w, r, raw, func(db seeding.DBTX) (any, error) {
			ep, err := catalog.CreateEpisode(r.Context(), db, sh.ID, b.input(catalog.Episode{}))
			if err != nil {
				return nil, err
			}
			return s.episodeDetailOf(r.Context(), db, ep)
		})
	}
}

// apiEpisode loads the show and the episode named in the path, if the account manages them.
func (s *Server) apiEpisode(r *http.Request) (catalog.Episode, error) {
	sh, err := s.apiShow(r)
	if err != nil {
		return catalog.Episode{}, err
	}
	id, err := strconv.ParseInt(chi.URLParam(r, "episodeID"), 10, 64)
	if err != nil {
		return catalog.Episode{}, fmt.Errorf("episode %q: %w", chi.URLParam(r, "episodeID"), catalog.ErrNotFound)
	}
	ep, err := catalog.FindEpisodeForAccount(r.Context(), s.db, id, *accountFrom(r.Context()))
	if err == nil && ep.ShowID != sh.ID {
		err = fmt.Errorf("episode %d of another show: %w", id, catalog.ErrNotFound)
	}
	return ep, err
}

// episodeDetailJSON is one episode with how far it has reached the fleet: what a script polls
// after an upload, from processing ("seeded by 1 of 2 nodes") to published or failed.
type episodeDetailJSON struct {
	episodeJSON
	Reach    *episodeReach `json:"reach"`
	SeededBy *string       `json:"seeded_by"`
}

func (s *Server) episodeDetailOf(ctx context.Context, db seeding.DBTX, ep catalog.Episode) (episodeDetailJSON, error) {
	list, err := s.episodeJSONs(ctx, db, []catalog.Episode{ep})
	if err != nil {
		return episodeDetailJSON{}, err
	}
	out := episodeDetailJSON{episodeJSON: list[0]}
	t, reach, err := s.torrentReach(ctx, db, ep.ID)
	if err != nil || t == nil {
		return out, err
	}
	out.Reach = reach
	line := reach.SeededBy()
	out.SeededBy = &line
	return out, nil
}

// handleAPIEpisode is one episode with its status, failure reason and reach.
func (s *Server) handleAPIEpisode() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ep, err := s.apiEpisode(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out, err := s.episodeDetailOf(r.Context(), s.db, ep)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
	}
}

// handleAPIEpisodeUpdate changes an episode's title or description.
func (s *Server) handleAPIEpisodeUpdate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ep, err := s.apiEpisode(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		var b episodeBody
		if _, err := readJSON(w, r, &b); err != nil {
			s.apiError(w, r, err)
			return
		}
		if ep, err = catalog.UpdateEpisode(r.Context(), s.db, ep.ID, b.input(ep)); err != nil {
			s.apiError(w, r, err)
			return
		}
		out, err := s.episodeDetailOf(r.Context(), s.db, ep)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

type planLineJSON struct {
	PartyID     int64   `json:"party_id"`
	Kind        string  `json:"kind"`
	Name        string  `json:"name"`
	Email       *string `json:"email"`
	BasisPoints int     `json:"basis_points"`
}

type planJSON struct {
	ShowID      int64          `json:"show_id"`
	Source      string         `json:"source"`
	FeePolicy   string         `json:"fee_policy"`
	EffectiveAt time.Time      `json:"effective_at"`
	Lines       []planLineJSON `json:"lines"`
}

func planJSONOf(p billing.Plan) planJSON {
	out := planJSON{ShowID: p.ShowID, Source: p.Source, FeePolicy: p.FeePolicy, EffectiveAt: p.EffectiveAt, Lines: []planLineJSON{}}
	for _, l := range p.Lines {
		out.Lines = append(out.Lines, planLineJSON{PartyID: l.PartyID, Kind: l.PartyKind, Name: l.Name, Email: l.Email, BasisPoints: l.BasisPoints})
	}
	return out
}

// planSource is the source query parameter: all when absent.
func planSource(r *http.Request) (string, error) {
	src := r.URL.Query().Get("source")
	switch src {
	case "":
		return billing.SourceAll, nil
	case billing.SourceAll, billing.SourceDonations, billing.SourceSponsorship:
		return src, nil
	}
	return "", catalog.FieldErrors{"source": "Source must be all, donations or sponsorship."}
}

// handleAPIPlan is the share plan that splits a source's money received now.
func (s *Server) handleAPIPlan() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		src, err := planSource(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		p, err := billing.PlanAt(r.Context(), s.db, sh.ID, src, time.Now())
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, planJSONOf(p))
	}
}

type planBody struct {
	Source    string `json:"source"`
	FeePolicy string `json:"fee_policy"`
	Lines     []struct {
		Distributor bool   `json:"distributor"`
		Name        string `json:"name"`
		Email       string `json:"email"`
		BasisPoints int    `json:"basis_points"`
	} `json:"lines"`
}

// handleAPIPlanSet sets a new share plan, checked as the editor checks it, in effect for money
// received from now on; earlier money keeps the plan it was split by.
func (s *Server) handleAPIPlanSet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sh, err := s.apiShow(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		var b planBody
		if _, err := readJSON(w, r, &b); err != nil {
			s.apiError(w, r, err)
			return
		}
		errs := catalog.FieldErrors{}
		if b.Source == "" {
			b.Source = billing.SourceAll
		}
		if b.Source != billing.SourceAll && b.Source != billing.SourceDonations && b.Source != billing.SourceSponsorship {
			errs["source"] = "Source must be all, donations or sponsorship."
		}
		if b.FeePolicy == "" {
			b.FeePolicy = billing.FeePolicyNet
		}
		if b.FeePolicy != billing.FeePolicyNet && b.FeePolicy != billing.FeePolicyGross {
			errs["fee_policy"] = "Fee policy must be net (shares of what is left after Stripe's fee) or gross."
		}
		var lines []parsedLine
		distributors := 0
		switch {
		case len(b.Lines) == 0:
			errs["lines"] = "A plan needs at least one line."
		case len(b.Lines) > 20:
			errs["lines"] = "A plan can have at most 20 parties."
		}
		for i, l := range b.Lines {
			f := fmt.Sprintf("lines[%d].", i)
			switch {
			case l.BasisPoints <= 0:
				errs[f+"basis_points"] = "Basis points must be more than 0 (10000 is 100%); leave the line out to drop it."
			case l.BasisPoints > billing.TotalBasisPoints:
				errs[f+"basis_points"] = "Basis points cannot be more than 10000 (100%)."
			}
			if l.Distributor {
				if distributors++; distributors > 1 {
					errs[f+"distributor"] = "Only one line is the distributor's."
				}
				if l.Name != "" || l.Email != "" {
					errs[f+"name"] = "The distributor's line has no name or email: it is the platform's."
				}
			}
			lines = append(lines, parsedLine{name: strings.TrimSpace(l.Name), email: strings.TrimSpace(l.Email), bps: l.BasisPoints, distributor: l.Distributor})
		}
		checkPlanLines(lines, func(i int, field string) string {
			if field == "lines" {
				return field
			}
			return fmt.Sprintf("lines[%d].%s", i, field)
		}, func(i int) string { return fmt.Sprintf("lines[%d]", i) }, errs)
		if len(errs) > 0 {
			s.apiError(w, r, errs)
			return
		}
		if err := s.savePlan(r.Context(), s.absoluteURL(r, ""), sh, *accountFrom(r.Context()), lines, b.FeePolicy, b.Source); err != nil {
			s.apiError(w, r, err)
			return
		}
		p, err := billing.PlanAt(r.Context(), s.db, sh.ID, b.Source, time.Now())
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, planJSONOf(p))
	}
}
