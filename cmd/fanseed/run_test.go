package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fanseed/fanseed/mail/mailtest"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `fanseed serve` in the test process and waits until /readyz answers 200.
func startServe(t *testing.T, env map[string]string) (baseURL string, stop func() error) {
	t.Helper()
	return startCommand(t, "serve", env)
}

// startCommand runs `fanseed serve` or `fanseed dev` in the test process until the test ends.
func startCommand(t *testing.T, command string, env map[string]string) (baseURL string, stop func() error) {
	t.Helper()
	addr := freeAddr(t)
	env["ADDR"] = addr
	if env["DATA_DIR"] == "" {
		env["DATA_DIR"] = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testkit.LogBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"fanseed", command}, func(k string) string { return env[k] }, io.Discard, logs)
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-errc:
			cancel()
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve not ready after 30s\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs)
		}
	})
	return base, stop
}

// TestEndToEnd starts the real program with an SMTP server on loopback, signs up, follows the
// confirmation link it was emailed, creates a show and a 75/25 share plan over HTTP as a
// browser would, and reads them back.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	env, smtpd := mailEnv(t)
	base, stop := startServe(t, env)
	client := newClient()
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := client.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d\n%s", path, resp.StatusCode, b)
		}
		return string(b)
	}

	resp, body := post("/signup", url.Values{"name": {"Nina Creator"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Check your email") {
		t.Fatalf("after sign-up: %d\n%s", resp.StatusCode, body)
	}
	confirmEmail(t, client, base, smtpd, "nina@example.com")
	resp, body = post("/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	if resp.Request.URL.Path != "/dashboard" || !strings.Contains(body, "Hello, Nina Creator") {
		t.Fatalf("after logging in landed on %s:\n%s", resp.Request.URL, body)
	}
	resp, body = post("/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"},
		"funding_goal": {"500"}, "description": {"A web series."}})
	if !strings.HasSuffix(resp.Request.URL.Path, "/plan") {
		t.Fatalf("after creating the show landed on %s:\n%s", resp.Request.URL, body)
	}
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")

	// An unbalanced plan is refused with the reason and keeps what was typed.
	resp, body = post(showPath+"/plan", url.Values{"name": {"Fanseed (distributor)", "Nina Creator"},
		"email": {"", "nina@example.com"}, "percent": {"25", "70"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Shares add up to 95.00%") || !strings.Contains(body, `value="70"`) {
		t.Fatalf("unbalanced plan: status %d\n%s", resp.StatusCode, body)
	}

	resp, body = post(showPath+"/plan", url.Values{"name": {"Fanseed (distributor)", "Nina Creator"},
		"email": {"", "nina@example.com"}, "percent": {"25", "75.00"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Shares saved") {
		t.Fatalf("saving the plan: status %d\n%s", resp.StatusCode, body)
	}

	show := get(showPath)
	for _, want := range []string{"Night Signals", "/s/night-signals", "goal 500.00 USD", "Fanseed (distributor)", "25.00%", "Nina Creator", "75.00%", "7.50", "2.50"} {
		if !strings.Contains(show, want) {
			t.Errorf("show page lacks %q", want)
		}
	}
	dash := get("/dashboard")
	if !regexp.MustCompile(`href="` + showPath + `"`).MatchString(dash) {
		t.Errorf("dashboard does not link the show %s", showPath)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v", err)
	}
}

// mailEnv is the environment of a serve process on a fresh database that sends its email to
// the SMTP server it returns.
func mailEnv(t *testing.T) (map[string]string, *mailtest.Server) {
	t.Helper()
	smtpd := mailtest.NewPlainServer(t)
	return map[string]string{"DATABASE_URL": dbtest.NewURL(t), "SMTP_URL": smtpd.URL(), "MAIL_FROM": "Fanseed <noreply@fanseed.test>"}, smtpd
}

// newClient is a browser's cookies: a client that keeps them.
func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// sender returns a function that sends, with a client, a GET (form unused) or a form POST of
// path on base, and returns the response and its body.
func sender(t *testing.T, base string) func(c *http.Client, method, path string, form url.Values) (*http.Response, string) {
	return func(c *http.Client, method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodGet {
			resp, err = c.Get(base + path)
		} else {
			resp, err = c.PostForm(base+path, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
}

// ninaWithShow signs the creator Nina up, confirming her address through smtpd, logs her in and
// makes her show Night Signals (USD) with a plan of 75% for her and 25% for the distributor. It
// returns her client.
func ninaWithShow(t *testing.T, base string, smtpd *mailtest.Server) *http.Client {
	t.Helper()
	send := sender(t, base)
	creator := newClient()
	send(creator, "POST", "/signup", url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}})
	confirmEmail(t, creator, base, smtpd, "nina@example.com")
	send(creator, "POST", "/login", url.Values{"email": {"nina@example.com"}, "password": {"a long enough password"}})
	resp, _ := send(creator, "POST", "/shows", url.Values{"title": {"Night Signals"}, "slug": {"night-signals"}, "currency": {"USD"}})
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	resp, body := send(creator, "POST", showPath+"/plan", url.Values{"name": {"Fanseed (distributor)", "Nina"},
		"email": {"", "nina@example.com"}, "percent": {"25", "75"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}})
	if !strings.Contains(body, "Shares saved") {
		t.Fatalf("plan not saved: %d", resp.StatusCode)
	}
	return creator
}

// confirmEmail follows the confirmation link emailed to addr: the page it opens, then its button.
func confirmEmail(t *testing.T, c *http.Client, base string, smtpd *mailtest.Server, addr string) {
	t.Helper()
	m := smtpd.Wait(t, addr, "Confirm your email address")
	link := ""
	for _, l := range m.Links() {
		if strings.HasPrefix(l, base+"/verify?token=") {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("no confirmation link to %s in:\n%s", base, m.Body)
	}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || token == nil {
		t.Fatalf("the link opened %d:\n%s", resp.StatusCode, page)
	}
	resp, err = c.PostForm(base+"/verify", url.Values{"token": {string(token[1])}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Address confirmed") {
		t.Fatalf("confirming answered %d:\n%s", resp.StatusCode, page)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "DATABASE_URL: is required"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL: must be a postgres:// URL"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "ADDR": "nope"}, "ADDR:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "ADDR": "127.0.0.1:99999"}, "ADDR: port"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "BASE_URL": "ftp://x"}, "BASE_URL:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "LOG_LEVEL": "loud"}, "LOG_LEVEL:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "METRICS_ALLOW": "10.0.0.0/33"}, `METRICS_ALLOW: "10.0.0.0/33" is not a network`},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "METRICS_ALLOW": ","}, "METRICS_ALLOW: no network given"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "METRICS_TOKEN": "short"}, "METRICS_TOKEN: must be at least 16 characters"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "EARLY_ACCESS_KEY": "short"}, "EARLY_ACCESS_KEY: must be at least 32 characters"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "SMTP_URL": "http://mail.example.com"}, "SMTP_URL: scheme"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "SMTP_URL": "smtp://u:p@mail.example.com"}, "MAIL_FROM: is required"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "MAIL_FROM": "not an address"}, "MAIL_FROM:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"}, `TRUSTED_PROXIES: "proxy.example" is not a network`},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "TRACKER_ANNOUNCES_PER_MINUTE": "-3"}, "TRACKER_ANNOUNCES_PER_MINUTE:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "REQUEST_BODY_TIMEOUT": "soon"}, "REQUEST_BODY_TIMEOUT:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "PLAYER_PEER_GRACE": "2h"}, "PLAYER_PEER_GRACE:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "PLAYER_PEER_GRACE": "-1s"}, "PLAYER_PEER_GRACE:"},
		{map[string]string{"DATABASE_URL": "postgres://x/y", "UPLOAD_EXPIRE_AFTER": "1s"}, "UPLOAD_EXPIRE_AFTER:"},
	}
	for _, tt := range tests {
		err := run(context.Background(), []string{"fanseed", "serve"}, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one containing %q", tt.env, err, tt.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fanseed", "help"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serve", "dev", "migrate", "admin create-user", "DATABASE_URL", "BASE_URL", "DATA_DIR"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"fanseed", "version"}, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "fanseed ") {
		t.Errorf("version printed %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"fanseed", "bogus"}, nil, io.Discard, io.Discard); err == nil {
		t.Error("an unknown command succeeded")
	}
}

// TestAdminCreateUser makes the first admin from the command line, who can then log in.
func TestAdminCreateUser(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	var out bytes.Buffer
	err := run(context.Background(), []string{"fanseed", "admin", "create-user", "-email", "root@example.com", "-name", "Root"},
		func(k string) string { return env[k] }, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no password printed: %q", out.String())
	}
	base, _ := startServe(t, env)
	client := newClient()
	resp, err := client.PostForm(base+"/login", url.Values{"email": {"root@example.com"}, "password": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(base + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin page: status %d", resp.StatusCode)
	}
}

// TestGracefulShutdown sends half a request, asks the server to stop, then sends the rest:
// the request in flight still gets its answer, and run returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t)})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := url.Values{"name": {"Late"}, "email": {"late@example.com"}, "password": {"a long enough password"}}.Encode()
	head := "POST /signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("serve stopped with a request in flight: %v", err)
	default:
	}
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK { // the "check your email" page
		t.Fatalf("in-flight sign-up: status %d, want 200", resp.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v after shutdown", err)
	}
}

// metricValue reads one series from serve's /metrics, such as
// `fanseed_seedbox_nodes{status="up"}`; ok is false when it is not there.
func metricValue(t *testing.T, base, series string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, found := strings.CutPrefix(line, series+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TRUSTED_PROXIES takes networks and single addresses, IPv4-mapped ones as IPv4.
func TestTrustedProxiesConfig(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x/y", "TRUSTED_PROXIES": " 10.0.0.0/8,192.0.2.7 ,::ffff:198.51.100.0/120, fd00::/8"}
	c, err := loadConfig(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.7/32 198.51.100.0/24 fd00::/8"; strings.Join(got, " ") != want {
		t.Errorf("TRUSTED_PROXIES = %v, want %s", got, want)
	}
	if c.AnnouncesPerMinute != 120 {
		t.Errorf("default announces per minute %d, want 120", c.AnnouncesPerMinute)
	}
}

// Shutdown takes SHUTDOWN_TIMEOUT at most, in all: a request stuck in the database past it (here
// a Stripe event whose insert waits on a lock the test holds) is cut off, and run returns
// instead of waiting on it again while stopping jobs and closing the pool.
func TestShutdownWithinTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	dbURL := dbtest.NewURL(t)
	base, stop := startServe(t, map[string]string{"DATABASE_URL": dbURL, "SHUTDOWN_TIMEOUT": timeout.String(),
		"STRIPE_WEBHOOK_SECRET": "whsec_shutdown_test"})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	watcher, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// The same event id, inserted and not committed: the webhook's insert waits for this.
	if _, err := tx.Exec(ctx, `INSERT INTO stripe_events (id, type, created, payload) VALUES ('evt_stuck', 'charge.succeeded', now(), '{}')`); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Appendf(nil, `{"id":"evt_stuck","object":"event","type":"charge.succeeded","created":1700000000,"api_version":%q,"data":{"object":{"id":"ch_1","object":"charge"}}}`, stripe.APIVersion)
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", billing.SignEvent(payload, "whsec_shutdown_test"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for { // until the webhook waits on the lock
		var waiting int
		// On another connection: in a transaction pg_stat_activity is read once and kept.
		if err := watcher.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%stripe_events%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook never reached the database")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		took := time.Since(start)
		t.Logf("run returned %s after it was asked to stop: %v", took.Round(time.Millisecond), err)
		if took > timeout+timeout/2 { // well short of twice the timeout
			t.Errorf("shutdown took %s, SHUTDOWN_TIMEOUT is %s", took, timeout)
		}
		if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
			t.Errorf("run returned %v, want an error saying requests were cut off", err)
		}
	case <-time.After(3 * timeout):
		tx.Rollback(ctx) // let it go, so the test ends
		t.Fatalf("run had not returned %s after it was asked to stop (SHUTDOWN_TIMEOUT %s)", 3*timeout, timeout)
	}
	tx.Rollback(ctx)
	<-answered
}
