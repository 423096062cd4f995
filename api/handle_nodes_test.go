package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// TestNodeAPI checks the seedbox machine API: the token, registration, heartbeats and errors.
func TestNodeAPI(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	uploads, err := publishing.NewUploadStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	published := &seeding.Published{DB: db}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := api.NewServer(api.Config{
		UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published,
		Publisher: &publishing.Publisher{DB: db, Store: uploads, BaseURL: "http://fanseed.test"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed},
		Fleet:     &seeding.Fleet{DB: db, Published: published, Episodes: publishing.Episodes{}, Log: logger}, NodeToken: "node-token-0123456789",
		Money: offlineMoney(t, db),
	}, db, logger, prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	node := `{"name":"n1","listen_addr":"127.0.0.1:6881","public_addr":"127.0.0.1:6881","capacity_bytes":1000}`
	for _, token := range []string{"", "node-token-012345678", "node-token-0123456789x"} {
		if code, _ := post("/api/nodes", token, node); code != http.StatusUnauthorized {
			t.Errorf("register with token %q: status %d, want 401", token, code)
		}
	}
	code, body := post("/api/nodes", "node-token-0123456789", node)
	var reg struct{ ID int64 }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &reg) != nil || reg.ID == 0 {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := post("/api/nodes", "node-token-0123456789", `{"name":"bad name"}`); code != http.StatusBadRequest || !strings.Contains(body, "node name") {
		t.Errorf("register with a bad name: %d %s", code, body)
	}
	hbPath := "/api/nodes/" + jsonNumber(reg.ID) + "/heartbeat"
	code, body = post(hbPath, "node-token-0123456789", `{"disk_used":5,"torrents":[]}`)
	if code != http.StatusOK || !strings.Contains(body, `"status":"up"`) {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	if code, _ := post(hbPath, "node-token-0123456789", `not json`); code != http.StatusBadRequest {
		t.Errorf("heartbeat with a bad body: %d, want 400", code)
	}
	// The admin fleet page lists the node with what it reported.
	admin, err := catalog.CreateAccount(context.Background(), db, catalog.SignUp{Email: "root@example.com", Name: "Root", Password: "correct horse battery", Role: catalog.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	token, err := catalog.CreateSession(context.Background(), db, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/admin/fleet", nil)
	req.AddCookie(&http.Cookie{Name: "fanseed_session", Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"n1", "127.0.0.1:6881", ">up<", "5 B", "1000 B", "Drain and remove"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), want) {
			t.Errorf("fleet page (status %d) lacks %q", resp.StatusCode, want)
		}
	}
	if code, _ := post("/api/nodes/999999/heartbeat", "node-token-0123456789", `{}`); code != http.StatusNotFound {
		t.Errorf("heartbeat of an unknown node: %d, want 404 (the node registers again)", code)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
