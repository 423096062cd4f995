package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
)

// A campaign's early-access episode: a backer of the early-access tier fetches a private
// .torrent of their own and downloads the episode with aria2c (the private tracker lets their
// passkey in, the signed web seed sends the bytes); a backer without the reward, and a
// stranger, get no .torrent; a tampered or expired web seed URL and a wrong passkey are
// refused; the episode is not listed publicly until its release date.
func TestEarlyAccessPrivateTorrent(t *testing.T) {
	t.Parallel()
	ts, money := newMoneyServer(t)
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	money.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	show := donationShow(t, ts, "early")
	c, err := money.CreateCampaign(ctx, show.ID, billing.CampaignInput{Title: "Season two", Goal: 1000, Currency: "USD",
		Deadline: now.Add(24 * time.Hour), TimeZone: "UTC", AllOrNothing: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	early, err := billing.AddTier(ctx, ts.db, c.ID, billing.TierInput{Title: "Early access", Minimum: 500, EarlyAccess: true, Credits: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := money.LaunchCampaign(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	pledge := func(email string, tier int64) billing.Pledge {
		p, err := money.CreatePledge(ctx, billing.PledgeInput{CampaignID: c.ID, TierID: tier, Amount: 1000, Email: email, Name: "Backer " + email,
			CreditName: "Credit " + email})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := money.StartPledge(ctx, p, billing.CheckoutPage{TestURL: "/checkout/test/{session}"}); err != nil {
			t.Fatal(err)
		}
		var session string
		ts.db.QueryRow(ctx, `SELECT checkout_session_id FROM pledges WHERE id = $1`, p.ID).Scan(&session)
		tc, err := billing.FindTestCheckout(ctx, ts.db, session)
		if err != nil {
			t.Fatal(err)
		}
		tc.Card = billing.TestCardSucceeds
		for _, ev := range tc.Events(time.Now()) {
			if code, body := postEvent(t, ts.URL, ev, billing.SignEvent(ev, testSecret)); code != http.StatusOK {
				t.Fatalf("webhook: %d %s", code, body)
			}
		}
		return p
	}
	backer := pledge("backer@example.com", early.ID)
	plain := pledge("plain@example.com", 0)
	waitFor(t, func() bool { return countRows(t, ts, `SELECT count(*) FROM pledges WHERE status = 'active'`) == 2 })
	mu.Lock()
	now = c.Deadline.Add(time.Second)
	mu.Unlock()
	if err := money.SweepCampaigns(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return countRows(t, ts, `SELECT count(*) FROM pledges WHERE status = 'collected'`) == 2 })

	// The episode, published with its bytes on disk.
	data := make([]byte, 300_000)
	rand.Read(data)
	ep, rec := ts.publishedEpisode(t, show, "Episode one", "episode-one.mp3", data)
	content := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(content, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `UPDATE torrents SET content_path = $2 WHERE id = $1`, rec.ID, content); err != nil {
		t.Fatal(err)
	}
	owner := ownerSession(t, ts, "early@example.com")
	release := time.Now().Add(7 * 24 * time.Hour).UTC()
	resp := ts.do(t, &owner, "POST", "/shows/"+strconv.FormatInt(show.ID, 10)+"/campaigns/"+strconv.FormatInt(c.ID, 10)+"/episodes",
		url.Values{"episode_id": {strconv.FormatInt(ep.ID, 10)}, "release_at": {release.Format("2006-01-02T15:04")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("mark early access: %d %s", resp.StatusCode, readBody(t, resp))
	}
	episodePage := "/s/early/e/" + strconv.FormatInt(ep.ID, 10)
	if resp := ts.do(t, nil, "GET", episodePage, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the episode's public page before its release: %d", resp.StatusCode)
	}
	// Nor its public torrent: no .torrent, no web seed for fans, no tracker; the fleet's nodes
	// (with the node token) still fetch it from the web seed.
	publicTorrent := "/t/" + rec.InfoHashHex() + ".torrent"
	publicSeed := "/seed/" + rec.InfoHashHex() + "/episode-one.mp3"
	if resp := ts.do(t, nil, "GET", publicTorrent, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the public .torrent before the release: %d, want 404", resp.StatusCode)
	}
	if resp := ts.do(t, nil, "GET", publicSeed, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the public web seed before the release: %d, want 404", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ts.URL+publicSeed, nil)
	req.Header.Set("Authorization", "Bearer "+moneyServerNodeToken)
	if resp := ts.send(t, nil, req); resp.StatusCode != http.StatusOK || readBody(t, resp) != string(data) {
		t.Errorf("a node's fetch from the web seed before the release: %d, want the file", resp.StatusCode)
	}
	publicAnnounce := "/announce?" + trackerQuery(url.Values{"info_hash": {string(rec.InfoHash)}, "peer_id": {"-TEST01-publicpeer01"}, "port": {"6882"},
		"uploaded": {"0"}, "downloaded": {"0"}, "left": {"10"}, "compact": {"1"}})
	if body := readBody(t, ts.do(t, nil, "GET", publicAnnounce, nil)); !strings.Contains(body, "failure reason") {
		t.Errorf("public announce before the release: %s, want a failure reason", body)
	}

	// The backer's page links the .torrent; the backer without the reward and a stranger get none.
	if body := readBody(t, ts.do(t, nil, "GET", "/pledges/"+backer.Token, nil)); !strings.Contains(body, "/early/"+strconv.FormatInt(ep.ID, 10)+".torrent") {
		t.Fatalf("the backer's page lacks the early-access link:\n%s", body)
	}
	torrentPath := "/pledges/" + backer.Token + "/early/" + strconv.FormatInt(ep.ID, 10) + ".torrent"
	for _, other := range []string{"/pledges/" + plain.Token + "/early/" + strconv.FormatInt(ep.ID, 10) + ".torrent",
		"/pledges/pl_notapledge/early/" + strconv.FormatInt(ep.ID, 10) + ".torrent"} {
		if resp := ts.do(t, nil, "GET", other, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", other, resp.StatusCode)
		}
	}
	resp = ts.do(t, nil, "GET", torrentPath, nil)
	tb := []byte(readBody(t, resp))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the backer's .torrent: %d", resp.StatusCode)
	}
	mi, err := metainfo.Load(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	pledged, _ := billing.FindPledge(ctx, ts.db, backer.ID)
	if info.Private == nil || !*info.Private || !strings.Contains(mi.Announce, "/early/"+pledged.Passkey+"/announce") ||
		!strings.Contains(mi.Comment, "backer@example.com") || len(mi.UrlList) != 1 || mi.HashInfoBytes().HexString() == rec.InfoHashHex() {
		t.Fatalf("private torrent: private %v, announce %s, comment %q, url-list %v", info.Private, mi.Announce, mi.Comment, mi.UrlList)
	}

	// aria2c fetches it: the private tracker answers the passkey, the signed web seed sends the bytes.
	dir := t.TempDir()
	file := filepath.Join(dir, "early.torrent")
	if err := os.WriteFile(file, tb, 0o600); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(actx, "aria2c", "--dir="+dir, "--seed-time=0", "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true", "--file-allocation=none",
		"--summary-interval=0", "--console-log-level=warn", "--bt-tracker-connect-timeout=5", file).CombinedOutput()
	if err != nil {
		t.Fatalf("aria2c: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "episode-one.mp3"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("aria2c's file: %d bytes (%v), want the episode's %d", len(got), err, len(data))
	}
	if n := countRows(t, ts, `SELECT count(*) FROM campaign_episodes WHERE private_infohash = $1`, mi.HashInfoBytes().Bytes()); n != 1 {
		t.Fatalf("private infohash recorded %d times", n)
	}

	// The web seed wants its signature, unexpired; the tracker wants an entitled passkey.
	seed := mi.UrlList[0] + "episode-one.mp3"
	parts := strings.Split(strings.TrimPrefix(seed, ts.URL), "/") // "", early, passkey, ih, expires, sig, name
	tampered := strings.Join(append(append([]string{}, parts[:5]...), strings.Repeat("0", 64), parts[6]), "/")
	expired := strings.Join(append(append([]string{}, parts[:4]...), "1000", parts[5], parts[6]), "/")
	other := strings.Join(append(append([]string{}, parts[:2]...), "notapasskey", parts[3], parts[4], parts[5], parts[6]), "/")
	for _, u := range []string{tampered, expired, other} {
		if resp := ts.do(t, nil, "GET", u, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", u, resp.StatusCode)
		}
	}
	ih := mi.HashInfoBytes()
	q := url.Values{"info_hash": {string(ih[:])}, "peer_id": {"-TEST01-abcdefghijkl"}, "port": {"6881"}, "uploaded": {"0"},
		"downloaded": {"0"}, "left": {"10"}, "compact": {"1"}}
	if body := readBody(t, ts.do(t, nil, "GET", "/early/notapasskey/announce?"+trackerQuery(q), nil)); !strings.Contains(body, "failure reason") {
		t.Errorf("announce with a wrong passkey: %s", body)
	}
	if body := readBody(t, ts.do(t, nil, "GET", "/early/"+pledged.Passkey+"/announce?"+trackerQuery(q), nil)); !strings.HasPrefix(body, "d") ||
		strings.Contains(body, "failure reason") || !strings.Contains(body, "interval") {
		t.Errorf("announce with the backer's passkey: %s", body)
	}
	// The public tracker knows nothing of the private torrent.
	if body := readBody(t, ts.do(t, nil, "GET", "/announce?"+trackerQuery(q), nil)); !strings.Contains(body, "failure reason") {
		t.Errorf("public announce of the private torrent: %s", body)
	}

	// On the release date the episode is public under its normal torrent.
	past := time.Now().Add(-time.Minute)
	if err := publishing.SetRelease(ctx, ts.db, show.ID, ep.ID, &past); err != nil {
		t.Fatal(err)
	}
	if resp := ts.do(t, nil, "GET", publicTorrent, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the public .torrent after the release: %d, want 200", resp.StatusCode)
	}
	// The tracker's set of published torrents is read again within 2 s; asked by scrape, which
	// no announce limit counts, then announced to once.
	waitFor(t, func() bool { ok, _ := ts.scrapes(rec); return ok })
	if body := readBody(t, ts.do(t, nil, "GET", publicAnnounce, nil)); strings.Contains(body, "failure reason") {
		t.Errorf("public announce after the release: %s", body)
	}
	waitFor(t, func() bool { // the fan pages' cache lasts a few seconds
		resp := ts.do(t, nil, "GET", episodePage, nil)
		body := readBody(t, resp)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, rec.InfoHashHex()) && strings.Contains(body, "Credit backer@example.com")
	})
}

// ownerSession is a session of an existing account, found by its address.
func ownerSession(t *testing.T, ts *testServer, email string) user {
	t.Helper()
	var u user
	if err := ts.db.QueryRow(context.Background(), `SELECT id FROM accounts WHERE email = $1`, email).Scan(&u.ID); err != nil {
		t.Fatal(err)
	}
	token, err := catalog.CreateSession(context.Background(), ts.db, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.token = token
	return u
}
