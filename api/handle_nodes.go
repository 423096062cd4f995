package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/seeding"
)

// requireNodeToken compares the Bearer token with NODE_TOKEN in constant time (on hashes, so the
// lengths leak nothing either). Without NODE_TOKEN the fleet API is closed.
func (s *Server) requireNodeToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fleet == nil || !s.nodeTokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fanseed-nodes"`)
			writeNodeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid node token is required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// nodeTokenOK reports whether the request carries NODE_TOKEN as its Bearer token.
func (s *Server) nodeTokenOK(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.cfg.NodeToken))
	return ok && s.cfg.NodeToken != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// maxNodeRequest bounds a heartbeat: a report is about 200 bytes per torrent.
const maxNodeRequest = 8 << 20

func (s *Server) handleNodeRegister() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in seeding.NodeInfo
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxNodeRequest)).Decode(&in); err != nil {
			writeNodeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON node description"})
			return
		}
		e, err := s.fleet.Register(r.Context(), in, r.Header.Get(seeding.NodeSecretHeader))
		if err != nil {
			s.nodeError(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "seedbox node registered", "node_id", e.ID, "name", in.Name, "public_addr", in.PublicAddr,
			"enrolled", e.Secret != "")
		writeNodeJSON(w, http.StatusOK, e)
	}
}

func (s *Server) handleNodeHeartbeat() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "nodeID"), 10, 64)
		if err != nil {
			writeNodeJSON(w, http.StatusNotFound, map[string]string{"error": "no such node"})
			return
		}
		var hb seeding.Heartbeat
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxNodeRequest)).Decode(&hb); err != nil {
			writeNodeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON heartbeat"})
			return
		}
		orders, err := s.fleet.Heartbeat(r.Context(), id, r.Header.Get(seeding.NodeSecretHeader), hb)
		if err != nil {
			s.nodeError(w, r, err)
			return
		}
		writeNodeJSON(w, http.StatusOK, orders)
	}
}

// nodeError answers a node: 404 for a node the control plane does not know (it registers
// again), 403 for a call without the node's secret or of a removed node, 409 for a name another
// node holds, each with the reason, 400 with the reason for bad input, 500 otherwise.
func (s *Server) nodeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, seeding.ErrSecretRefused), errors.Is(err, seeding.ErrRemoved):
		writeNodeJSON(w, http.StatusForbidden, map[string]string{"error": seeding.FailureReason(err)})
	case errors.Is(err, seeding.ErrNameTaken):
		writeNodeJSON(w, http.StatusConflict, map[string]string{"error": seeding.FailureReason(err)})
	case errors.Is(err, seeding.ErrNotFound):
		writeNodeJSON(w, http.StatusNotFound, map[string]string{"error": "no such node: register again"})
	case errors.Is(err, seeding.ErrInvalid):
		writeNodeJSON(w, http.StatusBadRequest, map[string]string{"error": seeding.FailureReason(err)})
	case isDatabaseDown(err):
		s.unavailable(w, r, err)
	default:
		s.log.ErrorContext(r.Context(), "node request failed", "path", r.URL.Path, "error", err)
		writeNodeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
	}
}

// writeNodeJSON sets the headers, then the status, then writes v.
func writeNodeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// nodeHeartbeatRoute is the heartbeat's route pattern, whose successful requests log at debug.
const nodeHeartbeatRoute = "/api/nodes/{nodeID}/heartbeat"
