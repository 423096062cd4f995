package api_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fanseed/fanseed/catalog"
)

const (
	nsItunes  = "http://www.itunes.com/dtds/podcast-1.0.dtd"
	nsPodcast = "https://podcastindex.org/namespace/1.0"
)

// squarePNG is a side x side PNG, as an image editor saves one.
func squarePNG(t *testing.T, side int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range side {
		img.SetGray(i, i, color.Gray{Y: 200})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploadArtwork posts an image to the show page's artwork form.
func (ts *testServer) uploadArtwork(t *testing.T, u *user, showID int64, content []byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("artwork", "cover.png")
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/shows/%d/artwork", ts.URL, showID), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return ts.send(t, u, req)
}

// xmlNode is an element of a parsed feed, its name resolved to its namespace.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []xmlNode  `xml:",any"`
}

func (n xmlNode) child(space, local string) *xmlNode {
	for i := range n.Children {
		if c := &n.Children[i]; c.XMLName.Space == space && c.XMLName.Local == local {
			return c
		}
	}
	return nil
}

func (n xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// A creator sets up the show's feed on its edit page, uploads artwork and an episode; the
// podcast feed then carries every tag Apple Podcasts and the Podcasting 2.0 namespace ask for,
// each in its namespace, with the duration read from the uploaded MP3.
func TestPodcastFeedForDirectories(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is not installed (bash .ci/test installs it): %v", err)
	}
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	resp := ts.do(t, &owner, "POST", "/shows", url.Values{"slug": {"night-signals"}, "title": {"Night Signals"},
		"description": {"A web series."}, "currency": {"USD"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create show: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	show, err := catalog.FindShowBySlug(ctx, ts.db, "night-signals")
	if err != nil {
		t.Fatal(err)
	}
	edit := fmt.Sprintf("/shows/%d/edit", show.ID)
	if body := readBody(t, ts.do(t, &owner, "GET", edit, nil)); !strings.Contains(body, `<option value="Arts/Books"`) || !strings.Contains(body, `name="owner_email"`) {
		t.Fatal("the edit page offers no category list or owner fields")
	}
	form := url.Values{"slug": {"night-signals"}, "title": {"Night Signals"}, "description": {"A web series."}, "currency": {"USD"},
		"language": {"xx-nope"}, "category": {"Fiction/Drama"}, "author": {"Ada & Co"}, "owner_name": {"Ada"},
		"owner_email": {""}, "type": {"serial"}, "explicit": {"true"}, "locked": {"true"}}
	// Bad values are told next to their fields, all at once, and nothing is saved.
	resp = ts.do(t, &owner, "POST", edit, form)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `Language &#34;xx-nope&#34; is not a language code`) ||
		!strings.Contains(body, "A locked feed needs the owner&#39;s email") {
		t.Fatalf("bad language and a locked feed without email: status %d\n%s", resp.StatusCode, body)
	}
	form.Set("language", "en-GB")
	form.Set("owner_email", "ada@example.com")
	if resp := ts.do(t, &owner, "POST", edit, form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if resp := ts.uploadArtwork(t, &owner, show.ID, squarePNG(t, 1400)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("1400x1400 artwork: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	resp = ts.do(t, &owner, "POST", fmt.Sprintf("/shows/%d/episodes", show.ID), url.Values{"title": {"Pilot"}, "number": {"3"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create episode: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	epID, err := strconv.ParseInt(resp.Header.Get("Location")[strings.LastIndex(resp.Header.Get("Location"), "/")+1:], 10, 64)
	if err != nil {
		t.Fatal(err)
	}

	// A 65.4 s MP3 goes up over tus; its duration is read as the upload finishes.
	mp3 := filepath.Join(t.TempDir(), "pilot.mp3")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=65.4",
		"-c:a", "libmp3lame", "-b:a", "32k", mp3).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(mp3)
	if err != nil {
		t.Fatal(err)
	}
	path, resp := ts.tusCreate(t, &owner, int64(len(data)), map[string]string{"episode_id": fmt.Sprint(epID), "filename": "pilot.mp3"})
	if path == "" {
		t.Fatalf("tus create: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if resp := ts.tusPatch(t, &owner, path, 0, data); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("tus patch: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	// The fleet publishes it.
	if _, err := ts.db.Exec(ctx, `UPDATE torrents SET status = 'published', published_at = now() WHERE episode_id = $1`, epID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.Exec(ctx, `UPDATE episodes SET status = 'published', published_at = now() WHERE id = $1`, epID); err != nil {
		t.Fatal(err)
	}

	resp = ts.do(t, nil, "GET", "/s/night-signals/podcast.rss", nil)
	raw, _ := io.ReadAll(resp.Body)
	var doc xmlNode
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("feed does not parse: %v\n%s", err, raw)
	}
	ch := doc.child("", "channel")
	if doc.XMLName.Local != "rss" || doc.attr("version") != "2.0" || ch == nil {
		t.Fatalf("not an RSS 2.0 document:\n%s", raw)
	}
	need := func(n *xmlNode, space, local string) *xmlNode {
		t.Helper()
		c := n.child(space, local)
		if c == nil {
			t.Errorf("feed has no <%s> in namespace %q under <%s>:\n%s", local, space, n.XMLName.Local, raw)
			return &xmlNode{}
		}
		return c
	}
	text := func(n *xmlNode, space, local, want string) {
		t.Helper()
		if got := strings.TrimSpace(need(n, space, local).Text); got != want {
			t.Errorf("<%s> is %q, want %q", local, got, want)
		}
	}
	text(ch, "", "title", "Night Signals")
	text(ch, "", "description", "A web series.")
	text(ch, "", "language", "en-GB")
	if img := need(ch, nsItunes, "image").attr("href"); !strings.HasSuffix(img, "/s/night-signals/artwork") {
		t.Errorf("itunes:image href %q", img)
	}
	cat := need(ch, nsItunes, "category")
	if sub := cat.child(nsItunes, "category"); cat.attr("text") != "Fiction" || sub == nil || sub.attr("text") != "Drama" {
		t.Errorf("itunes:category %+v, want Fiction with Drama inside", cat)
	}
	text(ch, nsItunes, "explicit", "true")
	text(ch, nsItunes, "author", "Ada & Co")
	text(ch, nsItunes, "type", "serial")
	ownerTag := need(ch, nsItunes, "owner")
	text(ownerTag, nsItunes, "name", "Ada")
	text(ownerTag, nsItunes, "email", "ada@example.com")
	// podcast:guid is the UUIDv5 of the feed's URL without its scheme, in the namespace's UUID.
	feedURL := need(ch, "http://www.w3.org/2005/Atom", "link").attr("href")
	if !strings.HasSuffix(feedURL, "/s/night-signals/podcast.rss") {
		t.Errorf("atom:link self %q is not the feed", feedURL)
	}
	text(ch, nsPodcast, "guid", catalog.PodcastGUID(feedURL))
	locked := need(ch, nsPodcast, "locked")
	if strings.TrimSpace(locked.Text) != "yes" || locked.attr("owner") != "ada@example.com" {
		t.Errorf("podcast:locked %q owner %q, want yes by ada@example.com", locked.Text, locked.attr("owner"))
	}
	items := 0
	for _, it := range ch.Children {
		if it.XMLName.Local != "item" {
			continue
		}
		items++
		text(&it, "", "title", "Pilot")
		enc := need(&it, "", "enclosure")
		if !strings.HasSuffix(enc.attr("url"), "/pilot.mp3") || enc.attr("type") != "audio/mpeg" || enc.attr("length") != strconv.Itoa(len(data)) {
			t.Errorf("enclosure url %q type %q length %q, want the web seed's pilot.mp3, audio/mpeg, %d", enc.attr("url"), enc.attr("type"), enc.attr("length"), len(data))
		}
		if g := need(&it, "", "guid"); strings.TrimSpace(g.Text) == "" || g.attr("isPermaLink") != "false" {
			t.Errorf("guid %+v", g)
		}
		pub := strings.TrimSpace(need(&it, "", "pubDate").Text)
		if when, err := time.Parse(time.RFC1123Z, pub); err != nil || time.Since(when) > time.Hour {
			t.Errorf("pubDate %q is not RFC 2822 (%v)", pub, err)
		}
		text(&it, nsItunes, "duration", "65")
		text(&it, nsItunes, "episode", "3")
	}
	if items != 1 {
		t.Errorf("%d items, want 1", items)
	}
	// The guid stays when the show's slug, and so its feed URL, changes.
	form.Set("slug", "night-signals-2")
	if resp := ts.do(t, &owner, "POST", edit, form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename: status %d", resp.StatusCode)
	}
	var moved xmlNode
	if err := xml.NewDecoder(ts.do(t, nil, "GET", "/s/night-signals-2/podcast.rss", nil).Body).Decode(&moved); err != nil {
		t.Fatal(err)
	}
	text(moved.child("", "channel"), nsPodcast, "guid", catalog.PodcastGUID(feedURL))
}

// An image smaller than directories take is refused with the reason next to the artwork
// field, and the show keeps no artwork.
func TestArtworkTooSmall(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(context.Background(), ts.db, owner.ID, catalog.ShowInput{Slug: "small", Title: "Small", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	resp := ts.uploadArtwork(t, &owner, show.ID, squarePNG(t, 1000))
	body := readBody(t, resp)
	want := "The image must be at least 1400x1400 pixels: this one is 1000x1000. 3000x3000 is recommended."
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `<p class="error" role="alert">`+want+`</p>`) {
		t.Errorf("1000x1000 artwork: status %d, want 400 with %q by the field\n%s", resp.StatusCode, want, body)
	}
	if resp := ts.do(t, nil, "GET", "/s/small/artwork", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("artwork after a refused upload: status %d, want 404", resp.StatusCode)
	}
}
