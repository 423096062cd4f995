package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fanseed/fanseed/migrations/dbtest"
)

// openAPIChecker validates real answers against the served OpenAPI document: the status is
// one the operation documents, and the body has the documented shape (required properties
// present, each value of its documented JSON type, no undocumented property). It records
// which operations' success answers it saw.
type openAPIChecker struct {
	t    *testing.T
	doc  map[string]any
	seen map[string]bool // operationId of each success answer checked
}

// operation finds the documented operation of method on path (under /api/v1, or /api for the
// upload endpoint, whose path item names its own server).
func (c *openAPIChecker) operation(method, path string) (id string, op map[string]any) {
	rel, ok := strings.CutPrefix(path, "/api/v1")
	if !ok {
		rel = strings.TrimPrefix(path, "/api")
	}
	rel = strings.TrimSuffix(rel, "/")
	for tmpl, item := range c.doc["paths"].(map[string]any) {
		ts, ps := strings.Split(tmpl, "/"), strings.Split(rel, "/")
		if len(ts) != len(ps) {
			continue
		}
		match := true
		for i := range ts {
			if !strings.HasPrefix(ts[i], "{") && ts[i] != ps[i] {
				match = false
			}
		}
		if o, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any); match && ok {
			return o["operationId"].(string), o
		}
	}
	return "", nil
}

func (c *openAPIChecker) check(method, path string, status int, contentType string, body []byte) {
	c.t.Helper()
	id, op := c.operation(method, path)
	if op == nil {
		c.t.Errorf("%s %s is not in the OpenAPI document", method, path)
		return
	}
	responses := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(status)].(map[string]any)
	if !ok {
		resp, ok = responses[strconv.Itoa(status/100)+"XX"].(map[string]any)
	}
	if !ok {
		c.t.Errorf("%s (%s %s) answered %d, which it does not document: %s", id, method, path, status, body)
		return
	}
	if status < 300 {
		c.seen[id] = true
	}
	content, _ := resp["content"].(map[string]any)
	if content == nil {
		if len(bytes.TrimSpace(body)) != 0 {
			c.t.Errorf("%s %d documents no body, got %q", id, status, body)
		}
		return
	}
	if !strings.HasPrefix(contentType, "application/json") {
		c.t.Errorf("%s %d: Content-Type %q, want application/json (%s)", id, status, contentType, body)
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		c.t.Errorf("%s %d: %v in %s", id, status, err, body)
		return
	}
	schema := content["application/json"].(map[string]any)["schema"].(map[string]any)
	for _, problem := range c.validate(schema, v, "$") {
		c.t.Errorf("%s %d: %s\n%s", id, status, problem, body)
	}
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

func (c *openAPIChecker) validate(schema map[string]any, v any, at string) []string {
	if r, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		return c.validate(c.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any), v, at)
	}
	var types []string
	switch ty := schema["type"].(type) {
	case string:
		types = []string{ty}
	case []any:
		for _, x := range ty {
			types = append(types, x.(string))
		}
	}
	got := jsonType(v)
	if len(types) > 0 && !slices.Contains(types, got) && !(got == "integer" && slices.Contains(types, "number")) {
		return []string{fmt.Sprintf("%s is %s, documented %v", at, got, types)}
	}
	var out []string
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		out = append(out, fmt.Sprintf("%s is %v, not one of %v", at, v, enum))
	}
	if schema["format"] == "date-time" && got == "string" {
		if _, err := time.Parse(time.RFC3339, v.(string)); err != nil {
			out = append(out, fmt.Sprintf("%s is %q, not a date-time", at, v))
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asStrings(schema["required"]) {
			if _, ok := v[r]; !ok {
				out = append(out, fmt.Sprintf("%s lacks the required %s", at, r))
			}
		}
		for k, x := range v {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					out = append(out, fmt.Sprintf("%s.%s is not documented", at, k))
				}
				continue
			}
			out = append(out, c.validate(ps, x, at+"."+k)...)
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range v {
				out = append(out, c.validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return out
}

func asStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, x.(string))
	}
	return out
}

// apiClient calls the API with a bearer token, every answer checked against the document.
type apiClient struct {
	t     *testing.T
	base  string
	check *openAPIChecker
}

type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a apiAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%v in %s", err, a.body)
	}
}

// apiError is the API's error body.
type apiError struct {
	Error struct{ Code, Message, Field string }
}

func (a apiAnswer) err(t *testing.T) apiError {
	t.Helper()
	var e apiError
	a.decode(t, &e)
	return e
}

func (c *apiClient) do(token, method, path string, body io.Reader, header map[string]string) apiAnswer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.check.check(method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	return apiAnswer{resp.StatusCode, resp.Header, b}
}

func (c *apiClient) json(token, method, path string, v any, header map[string]string) apiAnswer {
	c.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
		if header == nil {
			header = map[string]string{}
		}
		header["Content-Type"] = "application/json"
	}
	return c.do(token, method, path, body, header)
}

func (c *apiClient) want(a apiAnswer, status int, what string) {
	c.t.Helper()
	if a.status != status {
		c.t.Fatalf("%s: status %d, want %d: %s", what, a.status, status, a.body)
	}
}

func (c *apiClient) wantError(a apiAnswer, status int, code, field, what string) {
	c.t.Helper()
	e := a.err(c.t)
	if a.status != status || e.Error.Code != code || e.Error.Field != field || e.Error.Message == "" {
		c.t.Errorf("%s: %d %+v, want %d %s field %q", what, a.status, e, status, code, field)
	}
}

var tokenSecretRE = regexp.MustCompile(`<code id="token-secret">(fst_[A-Za-z0-9_-]+)</code>`)

// TestAPIWritesWholeFlow is the JSON API's proof over real HTTP against `fanseed dev` (its
// two seedbox nodes and offline test mode): a creator makes a write token in the portal, then
// with the token alone creates a show and an episode, uploads the file with tus, follows the
// episode until the fleet publishes it, sets a share plan and lists the donation a fan made. A
// read token is refused on writes, an expired token is refused as expired, and bad input is
// refused naming the field. Every answer is checked against the served OpenAPI document, and
// every documented operation is seen answering.
func TestAPIWritesWholeFlow(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	base, _ := startCommand(t, "dev", map[string]string{"DATABASE_URL": dbURL})
	db, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	portal := &fan{t: t, base: base, c: newClient()}
	portal.post("/signup", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	portal.post("/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	newToken := func(name, scope, expiry string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/account/tokens", strings.NewReader(url.Values{"name": {name}, "scope": {scope}, "expiry": {expiry}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := portal.do(req)
		m := tokenSecretRE.FindSubmatch(body)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("token %s: status %d, no secret:\n%s", name, resp.StatusCode, body)
		}
		return string(m[1])
	}
	write := newToken("deploy", "write", "30")
	read := newToken("reports", "read", "none")

	var doc map[string]any
	resp, body := portal.do(mustRequest(t, "GET", base+"/api/v1/openapi.json"))
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	checker := &openAPIChecker{t: t, doc: doc, seen: map[string]bool{}}
	api := &apiClient{t: t, base: base, check: checker}
	api.do("", "GET", "/api/v1/openapi.json", nil, nil)

	// Shows: created once per Idempotency-Key, edited, bad input named.
	showIn := map[string]any{"slug": "night-signals", "title": "Night Signals", "currency": "USD", "funding_goal": 50000}
	key := map[string]string{"Idempotency-Key": "create-night-signals"}
	a := api.json(write, "POST", "/api/v1/shows", showIn, key)
	api.want(a, 201, "create show")
	var show struct {
		ID          int64
		Slug, Title string
		FundingGoal int64 `json:"funding_goal"`
	}
	a.decode(t, &show)
	if show.Slug != "night-signals" || show.FundingGoal != 50000 {
		t.Fatalf("created show %+v", show)
	}
	again := api.json(write, "POST", "/api/v1/shows", showIn, key)
	var replay struct{ ID int64 }
	again.decode(t, &replay)
	if again.status != 201 || replay.ID != show.ID || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry with the same Idempotency-Key: %d %s, want the first answer replayed", again.status, again.body)
	}
	var shows int
	db.QueryRow(context.Background(), `SELECT count(*) FROM shows`).Scan(&shows)
	if shows != 1 {
		t.Errorf("%d shows after a retried create, want 1", shows)
	}
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "other", "title": "Other", "currency": "USD"}, key),
		409, "conflict", "Idempotency-Key", "same key, another body")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "night-signals", "title": "Twice", "currency": "USD"}, nil),
		409, "conflict", "slug", "a slug taken")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "Bad Slug!", "title": "x", "currency": "USD"}, nil),
		400, "invalid", "slug", "a bad slug")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "ok-slug", "title": "x", "currency": "XXX"}, nil),
		400, "invalid", "currency", "an unknown currency")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "ok-slug", "title": 5, "currency": "USD"}, nil),
		400, "invalid", "title", "a title that is a number")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "ok-slug", "title": "x", "currency": "USD", "colour": "red"}, nil),
		400, "invalid", "colour", "an unknown field")
	api.wantError(api.json(write, "POST", "/api/v1/shows", map[string]any{"slug": "ok-slug", "title": "x", "currency": "USD", "funding_goal": -1}, nil),
		400, "invalid", "funding_goal", "a negative goal")
	showPath := fmt.Sprintf("/api/v1/shows/%d", show.ID)
	a = api.json(write, "PATCH", showPath, map[string]any{"title": "Night Signals Radio"}, nil)
	api.want(a, 200, "edit show")
	a.decode(t, &show)
	if show.Title != "Night Signals Radio" || show.Slug != "night-signals" || show.FundingGoal != 50000 {
		t.Errorf("edited show %+v: the title changed and nothing else", show)
	}
	api.want(api.do(read, "GET", showPath, nil, nil), 200, "get show")
	api.want(api.do(read, "GET", "/api/v1/shows", nil, nil), 200, "list shows")
	api.wantError(api.do(write, "GET", "/api/v1/shows/999999", nil, nil), 404, "not_found", "", "a show that is not there")

	// Episodes.
	a = api.json(write, "POST", showPath+"/episodes", map[string]any{"title": "Pilot", "description": "The first one"},
		map[string]string{"Idempotency-Key": "pilot"})
	api.want(a, 201, "create episode")
	type episode struct {
		ID            int64
		Title, Status string
		FailureReason string  `json:"failure_reason"`
		SeededBy      *string `json:"seeded_by"`
		Reach         *struct {
			Seeding  int `json:"seeding_nodes"`
			Replicas int
		}
		Torrent *struct{ InfoHash string }
	}
	var ep episode
	a.decode(t, &ep)
	if ep.Status != "draft" || ep.SeededBy != nil || ep.Reach != nil {
		t.Fatalf("new episode %+v", ep)
	}
	api.wantError(api.json(write, "POST", showPath+"/episodes", map[string]any{"title": ""}, nil), 400, "invalid", "title", "an episode without a title")
	epPath := fmt.Sprintf("%s/episodes/%d", showPath, ep.ID)
	a = api.json(write, "PATCH", epPath, map[string]any{"title": "Pilot (remastered)"}, nil)
	api.want(a, 200, "edit episode")
	a.decode(t, &ep)
	if ep.Title != "Pilot (remastered)" {
		t.Errorf("edited episode %+v", ep)
	}

	// The file, over tus with the token.
	data := mediaFile(11, 3<<20+123)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tusCreate := func(token string, episodeID int64, size int) apiAnswer {
		return api.do(token, "POST", "/api/uploads/", nil, map[string]string{"Tus-Resumable": "1.0.0",
			"Upload-Length": strconv.Itoa(size), "Upload-Metadata": "episode_id " + b64(fmt.Sprint(episodeID)) + ",filename " + b64("pilot.mp4")})
	}
	api.wantError(tusCreate(read, ep.ID, len(data)), 403, "insufficient_scope", "", "tus creation with a read token")
	api.wantError(api.do(write, "POST", "/api/uploads/", nil, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10"}),
		400, "invalid", "Upload-Metadata.episode_id", "tus creation without an episode")
	a = tusCreate(write, ep.ID, len(data))
	api.want(a, 201, "tus creation")
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.Path, "/api/uploads/") {
		t.Fatalf("tus Location %q", a.header.Get("Location"))
	}
	half := len(data) / 2
	patch := func(from, to int) apiAnswer {
		return api.do(write, "PATCH", loc.Path, bytes.NewReader(data[from:to]), map[string]string{"Tus-Resumable": "1.0.0",
			"Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.Itoa(from)})
	}
	api.want(patch(0, half), 204, "first PATCH")
	a = api.do(write, "HEAD", loc.Path, nil, map[string]string{"Tus-Resumable": "1.0.0"})
	if a.status != 200 || a.header.Get("Upload-Offset") != strconv.Itoa(half) {
		t.Fatalf("HEAD: %d offset %q, want %d", a.status, a.header.Get("Upload-Offset"), half)
	}
	api.wantError(patch(0, 10), 409, "conflict", "", "a PATCH at the wrong offset")
	api.want(patch(half, len(data)), 204, "last PATCH")

	// Followed with the token until the fleet publishes it.
	deadline := time.Now().Add(60 * time.Second)
	var lines []string
	for {
		a = api.do(read, "GET", epPath, nil, nil)
		api.want(a, 200, "episode status")
		ep = episode{}
		a.decode(t, &ep)
		if ep.SeededBy != nil && !slices.Contains(lines, *ep.SeededBy) {
			lines = append(lines, *ep.SeededBy)
		}
		if ep.Status == "published" || ep.Status == "failed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ep.Status != "published" || ep.Reach == nil || ep.Reach.Replicas != 2 || ep.Reach.Seeding != 2 || ep.Torrent == nil ||
		*ep.SeededBy != "Seeded by 2 of 2 nodes" {
		t.Fatalf("episode after 60 s: %+v (seen %q)", ep, lines)
	}
	t.Logf("status lines seen while polling: %q", lines)
	api.want(api.do(read, "GET", showPath+"/episodes", nil, nil), 200, "list episodes")

	// An upload cancelled: its episode goes back to draft.
	a = api.json(write, "POST", showPath+"/episodes", map[string]any{"title": "Outtakes"}, nil)
	var second episode
	a.decode(t, &second)
	a = tusCreate(write, second.ID, 1000)
	api.want(a, 201, "second tus creation")
	cancel, _ := url.Parse(a.header.Get("Location"))
	api.want(api.do(write, "DELETE", cancel.Path, nil, map[string]string{"Tus-Resumable": "1.0.0"}), 204, "cancel upload")

	// A file that is not media: the episode fails, with the reason.
	a = api.json(write, "POST", showPath+"/episodes", map[string]any{"title": "Notes"}, nil)
	var notes episode
	a.decode(t, &notes)
	text := bytes.Repeat([]byte("just some plain text notes\n"), 100)
	a = tusCreate(write, notes.ID, len(text))
	api.want(a, 201, "tus creation of a text file")
	bad, _ := url.Parse(a.header.Get("Location"))
	a = api.do(write, "PATCH", bad.Path, bytes.NewReader(text), map[string]string{"Tus-Resumable": "1.0.0",
		"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
	if a.status < 400 {
		t.Errorf("a text file accepted: %d", a.status)
	}
	a = api.do(read, "GET", fmt.Sprintf("%s/episodes/%d", showPath, notes.ID), nil, nil)
	notes = episode{}
	a.decode(t, &notes)
	if notes.Status != "failed" || !strings.Contains(notes.FailureReason, "not audio, video") {
		t.Errorf("episode of a text file: %s, want failed with the reason", a.body)
	}

	// The share plan: checked as the editor checks it, then set. Nina confirmed her address
	// (the link is in the outbox), so her own line links her account to her creator party.
	if _, err := db.Exec(context.Background(), `UPDATE accounts SET email_verified_at = now() WHERE email = 'nina@example.com'`); err != nil {
		t.Fatal(err)
	}
	planPath := showPath + "/plan"
	api.wantError(api.do(read, "GET", planPath, nil, nil), 404, "not_found", "", "the plan before there is one")
	line := func(name, email string, bps int) map[string]any {
		return map[string]any{"name": name, "email": email, "basis_points": bps}
	}
	dist := map[string]any{"distributor": true, "basis_points": 2500}
	for _, bad := range []struct {
		lines []any
		field string
	}{
		{[]any{dist, line("Nina", "nina@example.com", 6500)}, "lines"},
		{[]any{dist, line("Nina", "not an email", 7500)}, "lines[1].email"},
		{[]any{dist, line("", "nina@example.com", 7500)}, "lines[1].name"},
		{[]any{dist, line("Nina", "nina@example.com", 5000), line("Nina", "NINA@example.com", 2500)}, "lines[2].email"},
		{[]any{dist, line("Nina", "nina@example.com", 0)}, "lines[1].basis_points"},
	} {
		api.wantError(api.json(write, "PUT", planPath, map[string]any{"lines": bad.lines}, nil), 400, "invalid", bad.field, fmt.Sprintf("plan %v", bad.lines))
	}
	api.wantError(api.json(write, "PUT", planPath, map[string]any{"fee_policy": "half", "lines": []any{dist, line("Nina", "nina@example.com", 7500)}}, nil),
		400, "invalid", "fee_policy", "a bad fee policy")
	a = api.json(write, "PUT", planPath, map[string]any{"source": "all", "fee_policy": "net",
		"lines": []any{dist, line("Nina", "nina@example.com", 6000), line("Sam Sound", "sam@example.com", 1500)}}, nil)
	api.want(a, 200, "set plan")
	var plan struct {
		Lines []struct {
			Kind        string
			Name        string
			BasisPoints int `json:"basis_points"`
		}
	}
	a.decode(t, &plan)
	if len(plan.Lines) != 3 || plan.Lines[0].Kind != "distributor" || plan.Lines[1].Kind != "creator" || plan.Lines[2].Name != "Sam Sound" ||
		plan.Lines[1].BasisPoints != 6000 {
		t.Fatalf("plan set %s", a.body)
	}
	api.want(api.do(read, "GET", planPath, nil, nil), 200, "get plan")

	// A fan donates in offline test mode; the token lists the donation.
	fanJar, _ := cookiejar.New(nil)
	donor := &fan{t: t, base: base, c: &http.Client{Jar: fanJar}}
	resp = donor.post("/s/night-signals/donate", url.Values{"amount": {"custom"}, "custom": {"20.00"}, "frequency": {"once"},
		"display_name": {"Fan One"}, "message": {"Keep going"}})
	if !strings.HasPrefix(resp.Request.URL.Path, "/checkout/test/") {
		t.Fatalf("donating landed on %s", resp.Request.URL)
	}
	donor.post(resp.Request.URL.Path, url.Values{"action": {"pay"}})
	deadline = time.Now().Add(30 * time.Second)
	for {
		a = api.do(read, "GET", "/api/v1/donations", nil, nil)
		var page struct {
			Data []struct {
				Amount      int64
				DisplayName string `json:"display_name"`
				Status      string
			}
		}
		a.decode(t, &page)
		if len(page.Data) == 1 && page.Data[0].Amount == 2000 && page.Data[0].DisplayName == "Fan One" && page.Data[0].Status == "paid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("donations after 30 s: %s", a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a = api.do(read, "GET", "/api/v1/statements", nil, nil)
	var parties struct{ Data []struct{ Statement string } }
	a.decode(t, &parties)
	if len(parties.Data) != 1 {
		t.Errorf("statements: %s, want Nina's creator party", a.body)
	}
	for _, p := range parties.Data {
		api.want(api.do(read, "GET", p.Statement, nil, nil), 200, "statement "+p.Statement)
	}

	// A read token writes nothing; an expired token is refused as expired.
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/shows", showIn}, {"PATCH", showPath, map[string]any{"title": "x"}},
		{"POST", showPath + "/episodes", map[string]any{"title": "x"}}, {"PATCH", epPath, map[string]any{"title": "x"}},
		{"PUT", planPath, map[string]any{"lines": []any{dist}}},
	} {
		a := api.json(read, w.method, w.path, w.body, nil)
		api.wantError(a, 403, "insufficient_scope", "", w.method+" "+w.path+" with a read token")
		if e := a.err(t); !strings.Contains(e.Error.Message, "write scope") {
			t.Errorf("%s %s with a read token says %q, not the scope it needs", w.method, w.path, e.Error.Message)
		}
	}
	if _, err := db.Exec(context.Background(), `UPDATE api_tokens SET created_at = now() - interval '31 days',
		expires_at = now() - interval '1 day' WHERE name = 'deploy'`); err != nil {
		t.Fatal(err)
	}
	a = api.do(write, "GET", "/api/v1/shows", nil, nil)
	api.wantError(a, 401, "token_expired", "", "an expired token")
	if e := a.err(t); !strings.Contains(e.Error.Message, "expired") {
		t.Errorf("an expired token's message %q does not say it expired", e.Error.Message)
	}
	api.wantError(tusCreate(write, second.ID, 10), 401, "token_expired", "", "tus with an expired token")

	// Every documented operation answered, each checked against its schema.
	for _, item := range doc["paths"].(map[string]any) {
		for _, op := range item.(map[string]any) {
			if o, ok := op.(map[string]any); ok && !checker.seen[o["operationId"].(string)] {
				t.Errorf("operation %s never answered with success in this test", o["operationId"])
			}
		}
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
