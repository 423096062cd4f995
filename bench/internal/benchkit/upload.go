package benchkit

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Upload is an episode a benchmark uploaded: the creator's client (logged in), the episode's
// portal path, and how the one PATCH went.
type Upload struct {
	Creator     *http.Client
	EpisodePath string
	Start       time.Time // the PATCH sent
	Answered    time.Time // its answer
	LastByte    time.Time // its last body byte handed to the connection
}

// UploadEpisode signs up and logs in, makes a show and an episode, and sends the file (size
// bytes, named filename) in one PATCH as a tus client with an unbounded chunk size does.
func UploadEpisode(ctx context.Context, base, file string, size int64, filename string) (Upload, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path string, form url.Values) (*http.Response, error) {
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // each run signs up afresh in a shared database
	if _, err := post("/signup", url.Values{"name": {"Bench"}, "email": {"bench-" + run + "@example.com"}, "password": {"a long bench password"}}); err != nil {
		return Upload{}, err
	}
	// Sign-up asks to confirm the address; an account not confirmed yet may log in and make shows.
	if _, err := post("/login", url.Values{"email": {"bench-" + run + "@example.com"}, "password": {"a long bench password"}}); err != nil {
		return Upload{}, err
	}
	resp, err := post("/shows", url.Values{"title": {"Bench"}, "slug": {"bench-" + run}, "currency": {"USD"}})
	if err != nil {
		return Upload{}, err
	}
	showPath := strings.TrimSuffix(resp.Request.URL.Path, "/plan")
	if resp, err = post(showPath+"/episodes", url.Values{"title": {"Bench episode"}}); err != nil {
		return Upload{}, err
	}
	m := regexp.MustCompile(`/episodes/(\d+)$`).FindStringSubmatch(resp.Request.URL.Path)
	if m == nil {
		return Upload{}, fmt.Errorf("no episode page after creating one (at %s)", resp.Request.URL)
	}
	up := Upload{Creator: c, EpisodePath: resp.Request.URL.Path}

	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", "episode_id "+base64.StdEncoding.EncodeToString([]byte(m[1]))+
		",filename "+base64.StdEncoding.EncodeToString([]byte(filename)))
	if resp, err = c.Do(req); err != nil {
		return Upload{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return Upload{}, fmt.Errorf("create upload: %s", resp.Status)
	}
	loc, _ := resp.Location()

	f, err := os.Open(file)
	if err != nil {
		return Upload{}, err
	}
	defer f.Close()
	body := &timedReader{r: f}
	req, _ = http.NewRequestWithContext(ctx, "PATCH", loc.String(), body)
	req.ContentLength = size
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	up.Start = time.Now()
	if resp, err = c.Do(req); err != nil {
		return Upload{}, err
	}
	up.Answered, up.LastByte = time.Now(), body.eof
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return Upload{}, fmt.Errorf("upload: %s", resp.Status)
	}
	return up, nil
}

// TimedReader wraps r, noting when its last byte was read, that is, handed to the connection.
func TimedReader(r io.Reader) interface {
	io.Reader
	EOF() time.Time
} {
	return &timedReader{r: r}
}

type timedReader struct {
	r   io.Reader
	eof time.Time
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = time.Now()
	}
	return n, err
}

func (t *timedReader) EOF() time.Time { return t.eof }
