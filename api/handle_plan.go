package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// planLineView is one row of the share plan editor, as typed.
type planLineView struct {
	Name, Email, Percent string
	Distributor          bool
	Preview              string
}

type planPage struct {
	layout
	Show          catalog.Show
	Lines         []planLineView
	Errors        map[string]string
	FeePolicy     string
	Source        string
	TotalPercent  string
	PreviewAmount string
	MoreRows      int
	History       []planHistory
	Parties       []billing.ShowParty // and their invitations
}

type planHistory struct {
	EffectiveAt       time.Time
	Source, FeePolicy string
	Lines             []planLineView
}

type currentPlan struct {
	lines         []planLineView
	previewAmount string
}

// previewMinor is the donation the editor previews: 10.00 in the show's currency (1000 for a
// zero-decimal currency such as JPY).
func previewMinor(cur billing.Currency) int64 {
	if cur.Exponent == 0 {
		return 1000
	}
	m := int64(10)
	for range cur.Exponent {
		m *= 10
	}
	return m
}

func formatPercent(bps int) string { return fmt.Sprintf("%d.%02d", bps/100, bps%100) }

var percentRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,2})?$`)

// parsePercent reads "75", "75.5" or "75.25" as basis points.
func parsePercent(s string) (int, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if !percentRE.MatchString(s) {
		return 0, errors.New("Percent must be a number such as 75 or 12.50.")
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.Atoi(whole)
	f, _ := strconv.Atoi(frac)
	bps := w*100 + f
	if bps > billing.TotalBasisPoints {
		return 0, errors.New("Percent cannot be more than 100.")
	}
	return bps, nil
}

// fillPreview writes each line's part of the preview amount, split exactly as the ledger splits.
func fillPreview(lines []planLineView, bps []int, cur billing.Currency) string {
	total := 0
	for _, b := range bps {
		total += b
	}
	parts, err := billing.Split(previewMinor(cur), bps)
	for i := range lines {
		lines[i].Preview = ""
		if err == nil && bps[i] > 0 {
			lines[i].Preview = cur.Format(parts[i])
		}
	}
	return formatPercent(total)
}

func (s *Server) currentPlanView(r *http.Request, show catalog.Show) (currentPlan, error) {
	cur, err := billing.LookupCurrency(show.Currency)
	if err != nil {
		return currentPlan{}, err
	}
	cp := currentPlan{previewAmount: cur.Format(previewMinor(cur))}
	plan, err := billing.PlanAt(r.Context(), s.db, show.ID, billing.SourceAll, time.Now())
	if errors.Is(err, billing.ErrNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, err
	}
	bps := make([]int, len(plan.Lines))
	for i, l := range plan.Lines {
		bps[i] = l.BasisPoints
		cp.lines = append(cp.lines, planLineView{Name: l.Name, Percent: formatPercent(l.BasisPoints)})
	}
	fillPreview(cp.lines, bps, cur)
	return cp, nil
}

// planForm builds the editor rows: the distributor first, then the other parties.
func (s *Server) planForm(ctx context.Context, show catalog.Show, owner catalog.Account, rows int) ([]planLineView, string, error) {
	dist, err := billing.DistributorParty(ctx, s.db)
	if err != nil {
		return nil, "", err
	}
	lines := []planLineView{{Name: dist.Name, Distributor: true, Percent: "25.00"},
		{Name: owner.Name, Email: owner.Email, Percent: "75.00"}}
	fee := billing.FeePolicyNet
	plan, err := billing.PlanAt(ctx, s.db, show.ID, billing.SourceAll, time.Now())
	switch {
	case errors.Is(err, billing.ErrNotFound):
	case err != nil:
		return nil, "", err
	default:
		fee = plan.FeePolicy
		lines = []planLineView{{Name: dist.Name, Distributor: true, Percent: ""}}
		for _, l := range plan.Lines {
			if l.PartyID == dist.ID {
				lines[0].Percent = formatPercent(l.BasisPoints)
				continue
			}
			email := ""
			if l.Email != nil {
				email = *l.Email
			}
			lines = append(lines, planLineView{Name: l.Name, Email: email, Percent: formatPercent(l.BasisPoints)})
		}
	}
	for len(lines) < rows {
		lines = append(lines, planLineView{})
	}
	return lines, fee, nil
}

func (s *Server) handlePlan() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rows, _ := strconv.Atoi(r.URL.Query().Get("rows"))
		rows = min(max(rows, 4), 20)
		owner, err := catalog.FindAccountByID(r.Context(), s.db, show.OwnerID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		lines, fee, err := s.planForm(r.Context(), show, owner, rows)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.planPage(r.Context(), show, lines, fee, billing.SourceAll)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch {
		case r.URL.Query().Get("saved") != "":
			p.Flash = "Shares saved. They apply to money received from now on. Parties not yet linked to an account were sent an invitation."
		case r.URL.Query().Get("invited") != "":
			p.Flash = "Invitation sent."
		}
		s.render(w, r, http.StatusOK, "plan", p)
	}
}

func (s *Server) planPage(ctx context.Context, show catalog.Show, lines []planLineView, fee, source string) (*planPage, error) {
	cur, err := billing.LookupCurrency(show.Currency)
	if err != nil {
		return nil, err
	}
	bps := make([]int, len(lines))
	for i, l := range lines {
		bps[i], _ = parsePercent(l.Percent)
	}
	p := &planPage{layout: layout{Title: "Shares for " + show.Title}, Show: show, Lines: lines, Errors: map[string]string{},
		FeePolicy: fee, Source: source, PreviewAmount: cur.Format(previewMinor(cur)), MoreRows: min(len(lines)+2, 20)}
	p.TotalPercent = fillPreview(p.Lines, bps, cur)
	plans, err := billing.ListPlans(ctx, s.db, show.ID)
	if err != nil {
		return nil, err
	}
	if p.Parties, err = billing.ShowParties(ctx, s.db, show.ID); err != nil {
		return nil, err
	}
	for _, pl := range plans {
		h := planHistory{EffectiveAt: pl.EffectiveAt, Source: pl.Source, FeePolicy: pl.FeePolicy}
		for _, l := range pl.Lines {
			h.Lines = append(h.Lines, planLineView{Name: l.Name, Percent: formatPercent(l.BasisPoints)})
		}
		p.History = append(p.History, h)
	}
	return p, nil
}

// parsedLine is a validated editor row.
type parsedLine struct {
	name, email string
	bps         int
	distributor bool
}

// parsePlanForm validates the editor rows; errors are keyed by field and row ("percent2").
func parsePlanForm(r *http.Request) ([]planLineView, []parsedLine, map[string]string) {
	names, emails, percents := r.PostForm["name"], r.PostForm["email"], r.PostForm["percent"]
	n := max(len(names), len(emails), len(percents))
	errs := map[string]string{}
	if n > 20 {
		errs["lines"] = "A plan can have at most 20 parties."
		n = 20
	}
	at := func(v []string, i int) string {
		if i < len(v) {
			return strings.TrimSpace(v[i])
		}
		return ""
	}
	var views []planLineView
	var lines []parsedLine
	var rows []int // each line's row
	for i := range n {
		v := planLineView{Name: at(names, i), Email: at(emails, i), Percent: at(percents, i), Distributor: i == 0}
		views = append(views, v)
		if v.Percent == "" && (v.Distributor || (v.Name == "" && v.Email == "")) {
			continue // a blank row, or no share for the distributor
		}
		bps, err := parsePercent(v.Percent)
		if err != nil {
			errs[fmt.Sprintf("percent%d", i)] = err.Error()
		} else if bps == 0 && !v.Distributor {
			errs[fmt.Sprintf("percent%d", i)] = "Percent must be more than 0; clear the row to drop it."
		}
		if bps == 0 && v.Distributor {
			continue
		}
		rows = append(rows, i)
		lines = append(lines, parsedLine{name: v.Name, email: v.Email, bps: bps, distributor: v.Distributor})
	}
	checkPlanLines(lines, func(i int, field string) string {
		if field == "lines" {
			return field
		}
		return fmt.Sprintf("%s%d", field, rows[i])
	}, func(i int) string { return fmt.Sprintf("row %d", rows[i]+1) }, errs)
	return views, lines, errs
}

// checkPlanLines is the check every share plan passes, from the editor or the API: a name and
// an email for each party but the distributor, no email twice, and shares that add up to
// exactly 100%. Errors go in errs under the key fieldOf gives a line's field ("lines" for the
// plan as a whole), and where names a line for people; the sum is checked only when nothing
// else is wrong.
func checkPlanLines(lines []parsedLine, fieldOf func(line int, field string) string, where func(line int) string, errs map[string]string) {
	seen := map[string]int{}
	total := 0
	for i, l := range lines {
		total += l.bps
		if l.distributor {
			continue
		}
		if l.name == "" {
			errs[fieldOf(i, "name")] = "Name is required."
		} else if len([]rune(l.name)) > 100 {
			errs[fieldOf(i, "name")] = "Name must be at most 100 characters."
		}
		if a, err := mail.ParseAddress(l.email); err != nil || a.Address != l.email || len(l.email) > 254 {
			errs[fieldOf(i, "email")] = "Email must look like name@example.com."
		} else if j, dup := seen[strings.ToLower(l.email)]; dup {
			errs[fieldOf(i, "email")] = fmt.Sprintf("This email is already on %s.", where(j))
		}
		seen[strings.ToLower(l.email)] = i
	}
	if _, ok := errs[fieldOf(0, "lines")]; !ok && len(errs) == 0 && total != billing.TotalBasisPoints {
		errs[fieldOf(0, "lines")] = fmt.Sprintf("Shares add up to %s%%; they must add up to exactly 100%%.", formatPercent(total))
	}
}

func (s *Server) handlePlanSave() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, fmt.Errorf("%w: %v", catalog.ErrInvalid, err))
			return
		}
		views, lines, errs := parsePlanForm(r)
		fee, source := r.PostFormValue("fee_policy"), r.PostFormValue("source")
		if fee != billing.FeePolicyNet && fee != billing.FeePolicyGross {
			errs["fee_policy"] = "Choose how Stripe's fee is shared."
			fee = billing.FeePolicyNet
		}
		if source != billing.SourceAll && source != billing.SourceDonations && source != billing.SourceSponsorship {
			errs["source"] = "Choose what money the plan applies to."
			source = billing.SourceAll
		}
		if len(errs) > 0 || r.PostFormValue("action") == "preview" {
			p, err := s.planPage(r.Context(), show, views, fee, source)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Errors = errs
			status := http.StatusOK
			if len(errs) > 0 {
				status = http.StatusBadRequest
			}
			s.render(w, r, status, "plan", p)
			return
		}
		if err := s.savePlan(r.Context(), s.absoluteURL(r, ""), show, *accountFrom(r.Context()), lines, fee, source); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/plan?saved=1", show.ID), http.StatusSeeOther)
	}
}

// savePlan stores a checked plan for the show as by's change, in effect from now: the parties
// it names are found or made (the owner's own address is the creator party, linked to the
// owner's account once verified), and parties not yet linked to an account are invited, with
// links under base.
func (s *Server) savePlan(ctx context.Context, base string, show catalog.Show, by catalog.Account, lines []parsedLine, fee, source string) error {
	owner, err := catalog.FindAccountByID(ctx, s.db, show.OwnerID)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		dist, err := billing.DistributorParty(ctx, tx)
		if err != nil {
			return err
		}
		var pl []billing.PlanLine
		var invite []int64
		for _, l := range lines {
			id := dist.ID
			if !l.distributor {
				// The show's owner is its creator party, linked to their account once their
				// address is verified (now, or when they verify it). Anyone else named is
				// invited: naming an address links nobody to it.
				own := strings.EqualFold(l.email, owner.Email)
				kind, accountID := billing.PartyCollaborator, (*int64)(nil)
				if own {
					kind = billing.PartyCreator
					if owner.Verified() {
						accountID = &owner.ID
					}
				}
				p, err := billing.EnsureParty(ctx, tx, kind, l.name, l.email, accountID)
				if err != nil {
					return err
				}
				switch {
				case own && owner.Verified() && p.AccountID == nil:
					if err := billing.LinkOwnParty(ctx, tx, p.ID, owner.ID, owner.Email); err != nil {
						return err
					}
				case !own && p.AccountID == nil:
					invite = append(invite, p.ID)
				}
				id = p.ID
			}
			pl = append(pl, billing.PlanLine{PartyID: id, BasisPoints: l.bps})
		}
		if _, err = billing.CreatePlan(ctx, tx, show.ID, source, fee, time.Now(), pl, &by.ID); err != nil {
			return err
		}
		// A party with an invitation still good is not invited again.
		parties, err := billing.ShowParties(ctx, tx, show.ID)
		if err != nil {
			return err
		}
		for _, sp := range parties {
			if slices.Contains(invite, sp.PartyID) && sp.State != billing.PartyInvited {
				if err := s.invite(ctx, tx, base, sp.PartyID, show, owner); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// handlePlanPreview answers the editor's live preview with the split the ledger would make.
func (s *Server) handlePlanPreview() http.HandlerFunc {
	type response struct {
		TotalPercent string   `json:"total_percent"`
		Parts        []string `json:"parts"`
		Error        string   `json:"error,omitempty"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		cur, err := billing.LookupCurrency(show.Currency)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		percents := r.URL.Query()["percent"]
		if len(percents) > 20 {
			percents = percents[:20]
		}
		lines := make([]planLineView, len(percents))
		bps := make([]int, len(percents))
		var resp response
		for i, p := range percents {
			if strings.TrimSpace(p) == "" {
				continue
			}
			if bps[i], err = parsePercent(p); err != nil {
				resp.Error = err.Error()
			}
		}
		resp.TotalPercent = fillPreview(lines, bps, cur)
		for _, l := range lines {
			resp.Parts = append(resp.Parts, l.Preview)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	}
}
