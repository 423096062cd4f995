package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Sender delivers messages to one SMTP server, as SMTP_URL names it: smtp://user:pass@host:587
// (STARTTLS when the server offers it, port 587 by default) or smtps://user:pass@host:465
// (TLS from the start). The password is only ever sent over TLS, or to a server on loopback.
type Sender struct {
	addr        string
	host        string
	implicitTLS bool
	user, pass  string
	// TLS is the client TLS configuration (nil: the system's roots, for host).
	TLS *tls.Config
	// Timeout bounds one delivery, from dialling to QUIT.
	Timeout time.Duration
}

// ParseURL reads SMTP_URL.
func ParseURL(raw string) (*Sender, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the password
		}
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	s := &Sender{Timeout: time.Minute}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicitTLS = "465", true
	default:
		return nil, fmt.Errorf("scheme %q must be smtp or smtps", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("must have no path")
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	return s, nil
}

// Addr is the host:port mail is sent to (no credentials), for logs.
func (s *Sender) Addr() string { return s.addr }

// Deliver sends one message from the envelope sender from to one recipient.
func (s *Sender) Deliver(ctx context.Context, from, to string, msg []byte) error {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	cfg := s.TLS.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.host
	}
	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if s.implicitTLS {
		conn = tls.Client(conn, cfg)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting from %s: %w", s.addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("EHLO to %s: %w", s.addr, err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(cfg); err != nil {
				return fmt.Errorf("STARTTLS with %s: %w", s.addr, err)
			}
		}
	}
	if s.user != "" {
		// net/smtp's PLAIN refuses to send the password without TLS, except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return fmt.Errorf("authenticate to %s as %s: %w", s.addr, s.user, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of message: %w", err)
	}
	return c.Quit()
}

// compose builds the RFC 5322 message: plain UTF-8 text, quoted-printable, CRLF lines.
func compose(from, to, subject, body string, now time.Time) ([]byte, string, error) {
	fa, err := mail.ParseAddress(from)
	if err != nil {
		return nil, "", fmt.Errorf("%w: MAIL_FROM %q: %v", ErrInvalid, from, err)
	}
	id := rand.Text()
	domain := fa.Address[strings.LastIndexByte(fa.Address, '@')+1:]
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", fa.String())
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", now.Format(time.RFC1123Z))
	h("Message-ID", "<"+id+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes(), fa.Address, nil
}
