package api

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
)

// sentinelText is what the sentinel errors add to a message; people need the rest.
var sentinelText = []string{catalog.ErrInvalid.Error(), billing.ErrInvalid.Error(), mail.ErrInvalid.Error(),
	catalog.ErrConflict.Error(), billing.ErrConflict.Error()}

// errorCode is the code the tus handler puts before its messages (ERR_UNSUPPORTED_MEDIA: ...).
var errorCode = regexp.MustCompile(`^ERR_[A-Z_]+: `)

// userMessage is an error's message as people read it: without the sentinel's words or an
// internal code, starting with a capital.
func userMessage(msg string) string {
	msg = errorCode.ReplaceAllString(strings.TrimSpace(msg), "")
	for _, s := range sentinelText {
		msg = strings.ReplaceAll(msg, s+": ", "")
		msg = strings.TrimSuffix(msg, ": "+s)
	}
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}

// plainUploadErrors rewrites the upload endpoint's plain-text error answers with
// userMessage, for the upload page and any tus client to show as they are; a request with an
// API token gets them in the JSON API's error body instead.
func plainUploadErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &cleanErrorWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if cw.rewrite && r.Header.Get("Authorization") != "" {
			// An API client: the JSON API's error body.
			w.Header().Del("Content-Length")
			apiErrorBody(w, cw.status, uploadErrorCode(cw.status), userMessage(cw.buf.String()), uploadErrorField(cw.buf.String()))
			return
		}
		if cw.rewrite {
			body := userMessage(cw.buf.String()) + "\n"
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(cw.status)
			w.Write([]byte(body))
		}
	})
}

type cleanErrorWriter struct {
	http.ResponseWriter
	status  int
	rewrite bool
	wrote   bool
	buf     bytes.Buffer
}

func (w *cleanErrorWriter) WriteHeader(status int) {
	if w.wrote || w.rewrite {
		return
	}
	if status >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.rewrite, w.status = true, status
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *cleanErrorWriter) Write(b []byte) (int, error) {
	if w.rewrite {
		if w.buf.Len() < 64<<10 {
			w.buf.Write(b)
		}
		return len(b), nil
	}
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the tus handler sets deadlines).
func (w *cleanErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// uploadErrorCode is the API's error code for an upload refused with status.
func uploadErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "rejected"
	case http.StatusInsufficientStorage:
		return "storage_full"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

// uploadFieldRE reads the header (and metadata key) an upload error's message starts with:
// "Upload-Length: ...", "Upload-Metadata: episode_id is required", "Upload-Metadata: filename: ...".
var uploadFieldRE = regexp.MustCompile(`^(Upload-[A-Za-z]+|Tus-Resumable|Content-Type): (?:([a-z_]+)(?: is required|:))?`)

// uploadErrorField is the field an upload error names, "" for none.
func uploadErrorField(msg string) string {
	m := uploadFieldRE.FindStringSubmatch(strings.TrimSpace(msg))
	switch {
	case m == nil:
		return ""
	case m[2] != "":
		return m[1] + "." + m[2]
	}
	return m[1]
}
