package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

type dashboardPage struct {
	layout
	Shows []catalog.Show
}

func (s *Server) handleDashboard() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		var shows []catalog.Show
		if a.CanManageShows() {
			var err error
			if shows, err = catalog.ListShows(r.Context(), s.db, *a); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.render(w, r, http.StatusOK, "dashboard", &dashboardPage{layout: layout{Title: "Dashboard"}, Shows: shows})
	}
}

type showFormPage struct {
	layout
	Show       *catalog.Show
	Form       catalog.ShowInput
	Errors     catalog.FieldErrors
	Currencies []string
	Feed       catalog.FeedInput  // the podcast feed's settings, on the edit page
	Categories []catalog.Category // Apple Podcasts' categories, for the feed's
}

func (s *Server) handleShowNew() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "show_form", &showFormPage{
			layout: layout{Title: "New show"}, Form: catalog.ShowInput{Currency: "USD"}, Currencies: billing.CurrencyCodes(),
		})
	}
}

func feedInputFrom(r *http.Request) catalog.FeedInput {
	return catalog.FeedInput{
		Language: r.PostFormValue("language"), Category: r.PostFormValue("category"), Author: r.PostFormValue("author"),
		OwnerName: r.PostFormValue("owner_name"), OwnerEmail: r.PostFormValue("owner_email"), Type: r.PostFormValue("type"),
		Explicit: r.PostFormValue("explicit") == "true", Locked: r.PostFormValue("locked") == "true",
	}
}

// feedURL is the address of a show's podcast feed, from which its podcast:guid is made.
func (s *Server) feedURL(slug string) string {
	return s.publisher.BaseURL + "/s/" + slug + "/podcast.rss"
}

func showInputFrom(r *http.Request) catalog.ShowInput {
	return catalog.ShowInput{
		Slug: r.PostFormValue("slug"), Title: r.PostFormValue("title"), Description: r.PostFormValue("description"),
		Currency: r.PostFormValue("currency"), FundingGoal: r.PostFormValue("funding_goal"),
	}
}

func (s *Server) handleShowCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := showInputFrom(r)
		show, err := catalog.CreateShow(r.Context(), s.db, accountFrom(r.Context()).ID, in)
		var fe catalog.FieldErrors
		if errors.As(err, &fe) {
			s.render(w, r, statusOf(err), "show_form", &showFormPage{
				layout: layout{Title: "New show"}, Form: in, Errors: fe, Currencies: billing.CurrencyCodes(),
			})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if _, err := catalog.EnsurePodcastGUID(r.Context(), s.db, show.ID, s.feedURL(show.Slug)); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/plan", show.ID), http.StatusSeeOther)
	}
}

// showFromURL loads the show named in the URL if the account may manage it.
func (s *Server) showFromURL(r *http.Request) (catalog.Show, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "showID"), 10, 64)
	if err != nil || id <= 0 {
		return catalog.Show{}, fmt.Errorf("show id %q: %w", chi.URLParam(r, "showID"), catalog.ErrNotFound)
	}
	return catalog.FindShowByID(r.Context(), s.db, id, *accountFrom(r.Context()))
}

func (s *Server) handleShowEdit() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form := catalog.ShowInput{Slug: show.Slug, Title: show.Title, Description: show.Description,
			Currency: show.Currency}
		if show.FundingGoal > 0 {
			form.FundingGoal = show.GoalText()
		}
		s.render(w, r, http.StatusOK, "show_form", &showFormPage{
			layout: layout{Title: "Edit " + show.Title}, Show: &show, Form: form, Currencies: billing.CurrencyCodes(),
			Feed: catalog.FeedInputOf(show), Categories: catalog.Categories,
		})
	}
}

func (s *Server) handleShowUpdate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		in, feed := showInputFrom(r), feedInputFrom(r)
		// Both parts of the form are checked, so that every field's error shows at once.
		fe := catalog.FieldErrors{}
		status := http.StatusBadRequest
		err = pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			for _, err := range []error{catalog.UpdateShowFeed(r.Context(), tx, show.ID, feed), updateShow(r.Context(), tx, show.ID, in)} {
				var f catalog.FieldErrors
				if !errors.As(err, &f) {
					if err != nil {
						return err
					}
					continue
				}
				status = max(status, statusOf(err))
				for k, v := range f {
					fe[k] = v
				}
			}
			if len(fe) > 0 {
				return fe
			}
			return nil
		})
		if len(fe) > 0 {
			s.render(w, r, status, "show_form", &showFormPage{
				layout: layout{Title: "Edit " + show.Title}, Show: &show, Form: in, Errors: fe, Currencies: billing.CurrencyCodes(),
				Feed: feed, Categories: catalog.Categories,
			})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d", show.ID), http.StatusSeeOther)
	}
}

func updateShow(ctx context.Context, db catalog.DBTX, id int64, in catalog.ShowInput) error {
	_, err := catalog.UpdateShow(ctx, db, id, in)
	return err
}

type showPage struct {
	layout
	BaseURL       string
	Show          catalog.Show
	Plan          []planLineView
	PreviewAmount string
	Episodes      []catalog.Episode
	EpisodeForm   catalog.EpisodeInput
	EpisodeErrors catalog.FieldErrors
	ArtworkErrors catalog.FieldErrors
}

func (s *Server) showPageData(r *http.Request, show catalog.Show) (*showPage, error) {
	eps, err := catalog.ListEpisodes(r.Context(), s.db, show.ID)
	if err != nil {
		return nil, err
	}
	p := &showPage{layout: layout{Title: show.Title}, Show: show, Episodes: eps, BaseURL: s.publisher.BaseURL}
	plan, err := s.currentPlanView(r, show)
	if err != nil {
		return nil, err
	}
	p.Plan, p.PreviewAmount = plan.lines, plan.previewAmount
	return p, nil
}

func (s *Server) handleShow() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.showPageData(r, show)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "show", p)
	}
}

func (s *Server) handleEpisodeCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		in := catalog.EpisodeInput{Title: r.PostFormValue("title"), Description: r.PostFormValue("description"), Number: r.PostFormValue("number")}
		ep, err := catalog.CreateEpisode(r.Context(), s.db, show.ID, in)
		var fe catalog.FieldErrors
		if errors.As(err, &fe) {
			p, perr := s.showPageData(r, show)
			if perr != nil {
				s.fail(w, r, perr)
				return
			}
			p.EpisodeForm, p.EpisodeErrors = in, fe
			s.render(w, r, statusOf(err), "show", p)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/episodes/%d", show.ID, ep.ID), http.StatusSeeOther)
	}
}

type adminPage struct {
	layout
	Shows     []catalog.Show
	Totals    []billing.CurrencyTotals
	Reversals []billing.ReversalLine
}

func (s *Server) handleAdmin() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		shows, err := catalog.ListShows(r.Context(), s.db, *accountFrom(r.Context()))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &adminPage{layout: layout{Title: "Admin"}, Shows: shows}
		if p.Totals, err = billing.TotalsByCurrency(r.Context(), s.db); err != nil {
			s.fail(w, r, err)
			return
		}
		if p.Reversals, err = billing.RecentReversals(r.Context(), s.db, 50); err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "admin", p)
	}
}
