package live

import (
	"context"
	"fmt"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/publishing"
)

// PublishWith is the Service's Publish through the normal publishing flow: the recording becomes
// an episode of the stream's show, and the donations made during the stream are linked to it.
func PublishWith(p *publishing.Publisher, db Beginner) func(ctx context.Context, s Stream, file string) (int64, error) {
	return func(ctx context.Context, s Stream, file string) (int64, error) {
		title := "Live " + s.StartedAt.UTC().Format("2006-01-02 15:04") + " UTC"
		ep, err := p.PublishFile(ctx, s.ShowID, catalog.EpisodeInput{Title: title,
			Description: fmt.Sprintf("Recording of the live stream of %s.", s.StartedAt.UTC().Format("2 January 2006"))}, file)
		if err != nil {
			return 0, err
		}
		end := s.StartedAt
		if s.EndedAt != nil {
			end = *s.EndedAt
		}
		if _, err := billing.LinkDonationsToEpisode(ctx, db, s.ShowID, s.StartedAt, end, ep.ID); err != nil {
			return ep.ID, err
		}
		return ep.ID, nil
	}
}
