package live

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Settings are what a creator sets for a show's streams.
type Settings struct {
	ShowID       int64  `db:"show_id"`
	Record       bool   `db:"record"`        // publish the recording as an episode when a stream ends
	MessageLimit int    `db:"message_limit"` // the most characters of a message the overlay shows
	Blocklist    string `db:"blocklist"`     // words (one a line or comma-separated) the overlay masks
	HideMessages bool   `db:"hide_messages"` // the overlay shows names and amounts only
	GoalAmount   int64  `db:"goal_amount"`   // the stream's goal in the show's minor units; 0 for none
}

// DefaultSettings are a show's settings until its creator saves some.
func DefaultSettings(showID int64) Settings {
	return Settings{ShowID: showID, Record: true, MessageLimit: 200}
}

// SettingsInput is what the live settings form sends.
type SettingsInput struct {
	Record, HideMessages bool
	MessageLimit         string
	Blocklist            string
	GoalAmount           int64 // parsed by the caller in the show's currency
}

// FindSettings loads a show's settings, or the defaults.
func FindSettings(ctx context.Context, db DBTX, showID int64) (Settings, error) {
	rows, _ := db.Query(ctx, `SELECT show_id, record, message_limit, blocklist, hide_messages, goal_amount
		FROM live_settings WHERE show_id = $1`, showID)
	s, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Settings])
	if err == pgx.ErrNoRows {
		return DefaultSettings(showID), nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("live settings of show %d: %w", showID, err)
	}
	return s, nil
}

// SaveSettings validates and stores a show's settings; a bad field is ErrInvalid naming it.
func SaveSettings(ctx context.Context, db DBTX, showID int64, in SettingsInput) (Settings, error) {
	limit, err := strconv.Atoi(strings.TrimSpace(in.MessageLimit))
	if err != nil || limit < 0 || limit > 500 {
		return Settings{}, fmt.Errorf("%w: message_limit: a whole number of characters from 0 to 500", ErrInvalid)
	}
	if utf8.RuneCountInString(in.Blocklist) > 5000 || len(in.Blocklist) > 5000 {
		return Settings{}, fmt.Errorf("%w: blocklist: at most 5000 characters", ErrInvalid)
	}
	if in.GoalAmount < 0 {
		return Settings{}, fmt.Errorf("%w: goal: must not be negative", ErrInvalid)
	}
	s := Settings{ShowID: showID, Record: in.Record, MessageLimit: limit, Blocklist: strings.TrimSpace(in.Blocklist),
		HideMessages: in.HideMessages, GoalAmount: in.GoalAmount}
	_, err = db.Exec(ctx, `INSERT INTO live_settings (show_id, record, message_limit, blocklist, hide_messages, goal_amount)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (show_id) DO UPDATE SET record = $2, message_limit = $3, blocklist = $4, hide_messages = $5, goal_amount = $6`,
		s.ShowID, s.Record, s.MessageLimit, s.Blocklist, s.HideMessages, s.GoalAmount)
	if err != nil {
		return Settings{}, fmt.Errorf("save live settings of show %d: %w", showID, err)
	}
	return s, nil
}

// blockedWords splits the blocklist into its lower-case words.
func (s Settings) blockedWords() []string {
	var words []string
	for _, w := range strings.FieldsFunc(s.Blocklist, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			words = append(words, w)
		}
	}
	return words
}

// Moderate is what the overlay shows of a donor's name and message under the settings: the
// blocklist's words masked (case-insensitively), the message cut to the limit, or hidden.
func (s Settings) Moderate(name, message string) (string, string) {
	words := s.blockedWords()
	name = mask(name, words)
	if s.HideMessages {
		return name, ""
	}
	message = mask(message, words)
	if utf8.RuneCountInString(message) > s.MessageLimit {
		message = strings.TrimSpace(string([]rune(message)[:s.MessageLimit])) + "…"
		if s.MessageLimit == 0 {
			message = ""
		}
	}
	return name, message
}

// mask replaces every occurrence of each word in text (any case) with asterisks.
func mask(text string, words []string) string {
	if len(words) == 0 {
		return text
	}
	runes := []rune(text)
	lower := []rune(strings.ToLower(text))
	if len(lower) != len(runes) { // a case mapping that changes length: compare rune by rune
		lower = make([]rune, len(runes))
		for i, r := range runes {
			lower[i] = []rune(strings.ToLower(string(r)))[0]
		}
	}
	for _, w := range words {
		wr := []rune(w)
		for i := 0; i+len(wr) <= len(lower); i++ {
			if string(lower[i:i+len(wr)]) == w {
				for j := i; j < i+len(wr); j++ {
					runes[j] = '*'
				}
				i += len(wr) - 1
			}
		}
	}
	return string(runes)
}
