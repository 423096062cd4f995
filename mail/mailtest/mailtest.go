// Package mailtest runs a real SMTP server (emersion/go-smtp) on loopback for tests, keeps
// what it receives and hands each message back decoded.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one delivered message.
type Message struct {
	From, To      string // the envelope
	Subject, Body string // decoded
	Header        mail.Header
	AuthUser      string // who authenticated, if anyone
	TLS           bool   // whether it came over TLS
	Raw           []byte
}

// Links returns the http(s) URLs in the body, in order.
func (m Message) Links() []string { return linkRE.FindAllString(m.Body, -1) }

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Server is an SMTP server on 127.0.0.1 that offers STARTTLS and PLAIN auth with one user.
type Server struct {
	srv        *smtp.Server
	addr       string
	User, Pass string
	// RejectNext makes the next n deliveries fail with a temporary error (451).
	mu         sync.Mutex
	rejectNext int
	msgs       []Message
	arrived    chan struct{}
	// CA is the certificate pool that trusts the server's STARTTLS certificate.
	CA *x509.CertPool
}

// NewServer starts a server for the test and stops it when the test ends.
func NewServer(t testing.TB) *Server { return start(t, true) }

// NewPlainServer starts a server without STARTTLS on loopback (where a client may send its
// password in the clear), for a process that cannot be told to trust a test certificate.
func NewPlainServer(t testing.TB) *Server { return start(t, false) }

func start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	s := &Server{User: "fanseed", Pass: "mail-secret", arrived: make(chan struct{}, 1000), CA: pool}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "127.0.0.1"
	s.srv.AllowInsecureAuth = !withTLS
	if withTLS {
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.ErrorLog = discard{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is an SMTP_URL for the server, with its user and password.
func (s *Server) URL() string { return "smtp://" + s.User + ":" + s.Pass + "@" + s.addr }

// TLSConfig is a client configuration that trusts the server's certificate.
func (s *Server) TLSConfig() *tls.Config { return &tls.Config{RootCAs: s.CA, ServerName: "127.0.0.1"} }

// RejectNext makes the next n deliveries fail with 451, as a busy server does.
func (s *Server) RejectNext(n int) {
	s.mu.Lock()
	s.rejectNext = n
	s.mu.Unlock()
}

// Messages returns what was delivered so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the first message to to (case-insensitive) whose subject contains subject,
// waiting up to a minute for it.
func (s *Server) Wait(t testing.TB, to, subject string) Message {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		for _, m := range s.Messages() {
			if strings.EqualFold(m.To, to) && strings.Contains(m.Subject, subject) {
				return m
			}
		}
		select {
		case <-s.arrived:
		case <-deadline:
			var got []string
			for _, m := range s.Messages() {
				got = append(got, m.To+": "+m.Subject)
			}
			t.Fatalf("no message to %s about %q within a minute; got %q", to, subject, got)
		}
	}
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	from, to string
	user     string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.User || pass != ss.s.Pass {
			return errors.New("wrong user or password")
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = to
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	reject := ss.s.rejectNext > 0
	if reject {
		ss.s.rejectNext--
	}
	ss.s.mu.Unlock()
	if reject {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	}
	m := Message{From: ss.from, To: ss.to, Raw: raw, AuthUser: ss.user}
	_, m.TLS = ss.conn.TLSConnectionState()
	parsed, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "Malformed message: " + err.Error()}
	}
	m.Header = parsed.Header
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(parsed.Header.Get("Subject")); err != nil {
		return &smtp.SMTPError{Code: 554, Message: "Malformed subject"}
	}
	body, err := io.ReadAll(parsed.Body)
	if err != nil {
		return err
	}
	if strings.EqualFold(parsed.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if body, err = io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(body)))); err != nil {
			return &smtp.SMTPError{Code: 554, Message: "Malformed quoted-printable body"}
		}
	}
	m.Body = strings.ReplaceAll(string(body), "\r\n", "\n")
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, m)
	ss.s.mu.Unlock()
	select {
	case ss.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", "" }
func (ss *session) Logout() error { return nil }

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
