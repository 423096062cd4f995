package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/seeding"
)

type fleetPage struct {
	layout
	Fleet          seeding.Overview
	Nodes, Removed []fleetNode
	ShortageBytes  string // the capacity shortage's bytes, for people
	ShortageSince  string // how long the shortage has lasted
}

// fleetNode is a node with its sizes and times written for people.
type fleetNode struct {
	seeding.NodeView
	DiskUsedText, CapacityText, UploadedText, HeartbeatAgo string
	SuspectAgo                                             string // how long it has been suspect
}

// fleetOrEmpty is the configured fleet, or one over the same database for servers built without
// it (tests of other pages), so the admin page always renders.
func (s *Server) fleetOrEmpty() *seeding.Fleet {
	if s.fleet != nil {
		return s.fleet
	}
	return &seeding.Fleet{DB: s.db, Log: s.log}
}

// handleFleet is the operator's view of the fleet: nodes, their status and disk, what each
// holds, which are suspect and why, and the torrents short of R proven seeding replicas.
func (s *Server) handleFleet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, err := s.fleetOrEmpty().Overview(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &fleetPage{layout: layout{Title: "Fleet"}, Fleet: o, ShortageBytes: humanBytes(o.Shortage.Bytes)}
		if o.Shortage.Short() {
			p.ShortageSince = time.Since(o.Shortage.Since).Round(time.Second).String()
		}
		view := func(n seeding.NodeView) fleetNode {
			v := fleetNode{NodeView: n, DiskUsedText: humanBytes(n.DiskUsed), CapacityText: humanBytes(n.CapacityBytes),
				UploadedText: humanBytes(n.Uploaded), HeartbeatAgo: time.Since(n.LastHeartbeat).Round(time.Second).String()}
			if n.SuspectSince != nil {
				v.SuspectAgo = time.Since(*n.SuspectSince).Round(time.Second).String()
			}
			return v
		}
		for _, n := range o.Nodes {
			p.Nodes = append(p.Nodes, view(n))
		}
		for _, n := range o.Removed {
			p.Removed = append(p.Removed, view(n))
		}
		s.render(w, r, http.StatusOK, "fleet", p)
	}
}

// handleNodeDrain removes a node safely: it keeps seeding until every torrent it holds has R
// seeding replicas elsewhere, then drops them and is marked removed.
func (s *Server) handleNodeDrain() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "nodeID"), 10, 64)
		if err != nil {
			s.renderError(w, r, http.StatusNotFound, "Not found", "There is no such node.")
			return
		}
		err = s.fleetOrEmpty().Drain(r.Context(), id)
		switch {
		case errors.Is(err, seeding.ErrNotFound):
			s.renderError(w, r, http.StatusNotFound, "Not found", "There is no such node, or it is already draining.")
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "seedbox node draining", "node_id", id, "by", accountFrom(r.Context()).ID)
		http.Redirect(w, r, fmt.Sprintf("/admin/fleet#node-%d", id), http.StatusSeeOther)
	}
}

// handleNodeRevoke takes a node's secret away: the node is refused (and marked down) until an
// admin re-admits it.
func (s *Server) handleNodeRevoke() http.HandlerFunc {
	return s.nodeAction("seedbox node secret revoked", func(ctx context.Context, id int64) error {
		return s.fleetOrEmpty().Revoke(ctx, id)
	})
}

// handleNodeReadmit lets the next enrolment under a node's name in without its old secret: a
// removed or revoked node comes back, or a node that lost its secret enrols again.
func (s *Server) handleNodeReadmit() http.HandlerFunc {
	return s.nodeAction("seedbox node re-admitted", func(ctx context.Context, id int64) error {
		return s.fleetOrEmpty().Readmit(ctx, id)
	})
}

// nodeAction is an admin's action on one node of the fleet page, logged with who did it; it goes
// back to the node's row.
func (s *Server) nodeAction(what string, act func(context.Context, int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "nodeID"), 10, 64)
		if err == nil {
			err = act(r.Context(), id)
		}
		switch {
		case errors.Is(err, seeding.ErrNotFound), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
			s.renderError(w, r, http.StatusNotFound, "Not found", "There is no such node.")
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), what, "node_id", id, "by", accountFrom(r.Context()).ID)
		http.Redirect(w, r, fmt.Sprintf("/admin/fleet#node-%d", id), http.StatusSeeOther)
	}
}
