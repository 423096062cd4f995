package api

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
)

// The email Fanseed sends about accounts and invitations, as plain text. Links carry their
// one-time token in the query, which request logs leave out.

func tokenLink(base, path, token string) string {
	return base + path + "?token=" + url.QueryEscape(token)
}

// window names the current span of d, so that one message per account and span goes out
// however often a form is sent.
func window(d time.Duration) int64 { return time.Now().Unix() / int64(d.Seconds()) }

func verifyMessage(base string, accountID int64, name, email, token, key string) mail.Message {
	return mail.Message{
		Key: key, To: email, Secret: true,
		Subject: "Confirm your email address for Fanseed",
		Body: fmt.Sprintf(`Hello %s,

Confirm that %s is your address by opening this link:

%s

The link works once, for 7 days. Until you confirm, your account can publish, but no share of money can be linked to it and it cannot connect a Stripe account.

If you did not sign up for Fanseed, ignore this message.
`, name, email, tokenLink(base, "/verify", token)),
	}
}

func alreadyMessage(base string, accountID int64, name, email string) mail.Message {
	return mail.Message{
		Key: fmt.Sprintf("signup-exists:%d:%d", accountID, window(time.Hour)), To: email,
		Subject: "You already have a Fanseed account",
		Body: fmt.Sprintf(`Hello %s,

Someone, perhaps you, tried to sign up for Fanseed with %s. You already have an account with this address.

Log in: %s/login
Forgot your password? Set a new one: %s/password/forgot

If it was not you, nothing changed; you can ignore this message.
`, name, email, base, base),
	}
}

func resetMessage(base string, accountID int64, name, email, token string) mail.Message {
	return mail.Message{
		Key: fmt.Sprintf("reset:%d:%d", accountID, window(5*time.Minute)), To: email, Secret: true,
		Subject: "Set a new Fanseed password",
		Body: fmt.Sprintf(`Hello %s,

To set a new password for your Fanseed account, open this link:

%s

The link works once, for an hour. Setting a new password logs your account out everywhere.

If you did not ask for this, ignore this message: your password stays as it is.
`, name, tokenLink(base, "/password/reset", token)),
	}
}

func invitationMessage(base string, partyID int64, partyName, email, showTitle, inviter, token string) mail.Message {
	return mail.Message{
		Key: "invite:" + hashPrefix(token), To: email, Secret: true,
		Subject: fmt.Sprintf("%s invites you to take a share of %s on Fanseed", oneLine(inviter), oneLine(showTitle)),
		Body: fmt.Sprintf(`Hello %s,

%s named you (%s) in the share plan of %s on Fanseed: a part of the money the show receives is owed to you.

To see your statements and get paid, accept the invitation:

%s

Log in (or sign up) with %s and confirm that address first. The link works once, for 14 days.

If you do not know what this is about, ignore this message.
`, partyName, inviter, email, showTitle, tokenLink(base, "/invitations/accept", token), email),
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func hashPrefix(token string) string {
	h := fmt.Sprintf("%x", catalog.HashLinkToken(token))
	return h[:24]
}
