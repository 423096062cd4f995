package api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
)

// rss is an RSS 2.0 document with the namespaces our feeds use.
type rss struct {
	XMLName   xml.Name   `xml:"rss"`
	Version   string     `xml:"version,attr"`
	NSTorrent string     `xml:"xmlns:torrent,attr,omitempty"`
	NSPodcast string     `xml:"xmlns:podcast,attr,omitempty"`
	NSItunes  string     `xml:"xmlns:itunes,attr,omitempty"`
	NSAtom    string     `xml:"xmlns:atom,attr,omitempty"`
	Channel   rssChannel `xml:"channel"`
}

// The namespaces of podcast feeds.
const (
	nsItunes  = "http://www.itunes.com/dtds/podcast-1.0.dtd"
	nsPodcast = "https://podcastindex.org/namespace/1.0"
	nsAtom    = "http://www.w3.org/2005/Atom"
)

type rssChannel struct {
	Title       string           `xml:"title"`
	Link        string           `xml:"link"`
	Self        *atomLink        `xml:"atom:link,omitempty"`
	Description string           `xml:"description"`
	Language    string           `xml:"language,omitempty"`
	Generator   string           `xml:"generator"`
	Image       *rssImage        `xml:"image,omitempty"`
	ItunesImage *itunesImage     `xml:"itunes:image,omitempty"`
	Categories  []itunesCategory `xml:"itunes:category,omitempty"`
	Explicit    string           `xml:"itunes:explicit,omitempty"`
	Author      string           `xml:"itunes:author,omitempty"`
	Owner       *itunesOwner     `xml:"itunes:owner,omitempty"`
	Type        string           `xml:"itunes:type,omitempty"`
	GUID        string           `xml:"podcast:guid,omitempty"`
	Locked      *podcastLocked   `xml:"podcast:locked,omitempty"`
	Funding     *rssFunding      `xml:"podcast:funding,omitempty"`
	Items       []rssItem        `xml:"item"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
}

type rssImage struct {
	URL   string `xml:"url"`
	Title string `xml:"title"`
	Link  string `xml:"link"`
}

type itunesImage struct {
	Href string `xml:"href,attr"`
}

type itunesCategory struct {
	Text string           `xml:"text,attr"`
	Sub  []itunesCategory `xml:"itunes:category,omitempty"`
}

type itunesOwner struct {
	Name  string `xml:"itunes:name,omitempty"`
	Email string `xml:"itunes:email,omitempty"`
}

type podcastLocked struct {
	Owner string `xml:"owner,attr,omitempty"`
	Value string `xml:",chardata"`
}

type rssFunding struct {
	URL  string `xml:"url,attr"`
	Text string `xml:",chardata"`
}

type rssItem struct {
	Title       string       `xml:"title"`
	Link        string       `xml:"link"`
	Description string       `xml:"description,omitempty"`
	GUID        rssGUID      `xml:"guid"`
	PubDate     string       `xml:"pubDate,omitempty"`
	Enclosure   rssEnclosure `xml:"enclosure"`
	InfoHash    string       `xml:"torrent:infoHash,omitempty"`
	MagnetURI   string       `xml:"torrent:magnetURI,omitempty"`
	Length      int64        `xml:"torrent:contentLength,omitempty"`
	Duration    string       `xml:"itunes:duration,omitempty"`
	Episode     int          `xml:"itunes:episode,omitempty"`
	EpisodeType string       `xml:"itunes:episodeType,omitempty"`
}

type rssGUID struct {
	IsPermaLink bool   `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

type rssEnclosure struct {
	URL    string `xml:"url,attr"`
	Length int64  `xml:"length,attr"`
	Type   string `xml:"type,attr"`
}

func writeRSS(w http.ResponseWriter, doc rss) {
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		http.Error(w, "feed unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write([]byte(xml.Header))
	w.Write(out)
}

func pubDate(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC1123Z)
}

// handleTorrentFeed is the RSS feed BitTorrent clients' auto-downloaders subscribe to: each
// item's enclosure is the episode's .torrent.
func (s *Server) handleTorrentFeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		page := s.publisher.BaseURL + "/s/" + f.Show.Slug
		doc := rss{Version: "2.0", NSTorrent: "http://xmlns.ezrss.it/0.1/", Channel: rssChannel{
			Title: f.Show.Title, Link: page, Description: f.Show.Description, Generator: "Fanseed"}}
		for _, e := range f.Episodes {
			doc.Channel.Items = append(doc.Channel.Items, rssItem{
				Title: e.Title, Link: e.TorrentURL, Description: e.Description,
				GUID:      rssGUID{Value: e.Record.InfoHashHex()},
				PubDate:   pubDate(e.PublishedAt),
				Enclosure: rssEnclosure{URL: e.TorrentURL, Length: int64(len(e.Record.Metainfo)), Type: "application/x-bittorrent"},
				InfoHash:  e.Record.InfoHashHex(), MagnetURI: string(e.Magnet), Length: e.Record.Length,
			})
		}
		writeRSS(w, doc)
	}
}

// handlePodcastFeed is a podcast feed as directories take it (Apple Podcasts' tags and the
// Podcasting 2.0 namespace): enclosures are the web-seed URLs of the files, and
// podcast:funding points at the donate page.
func (s *Server) handlePodcastFeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		show := f.Show
		page := s.publisher.BaseURL + "/s/" + show.Slug
		self := page + "/podcast.rss"
		guid := ""
		if show.PodcastGUID != nil {
			guid = *show.PodcastGUID
		} else if guid, err = catalog.EnsurePodcastGUID(r.Context(), s.db, show.ID, self); err != nil {
			s.fanError(w, r, err)
			return
		}
		ch := rssChannel{
			Title: show.Title, Link: page, Description: show.Description, Generator: "Fanseed",
			Self:     &atomLink{Href: self, Rel: "self", Type: "application/rss+xml"},
			Language: show.Language, Author: show.Author, Explicit: strconv.FormatBool(show.Explicit),
			Type: show.ShowType, GUID: guid,
			Funding: &rssFunding{URL: page + "/donate", Text: "Support " + show.Title}}
		if ch.Author == "" {
			ch.Author = show.Title
		}
		if ch.Description == "" {
			ch.Description = show.Title
		}
		if show.ArtworkType != "" {
			art := page + "/artwork"
			ch.ItunesImage = &itunesImage{Href: art}
			ch.Image = &rssImage{URL: art, Title: show.Title, Link: page}
		}
		if show.Category != "" {
			c := itunesCategory{Text: show.Category}
			if show.Subcategory != "" {
				c.Sub = []itunesCategory{{Text: show.Subcategory}}
			}
			ch.Categories = []itunesCategory{c}
		}
		if show.OwnerName != "" || show.OwnerEmail != "" {
			ch.Owner = &itunesOwner{Name: show.OwnerName, Email: show.OwnerEmail}
		}
		ch.Locked = &podcastLocked{Value: "no", Owner: show.OwnerEmail}
		if show.Locked {
			ch.Locked.Value = "yes"
		}
		for _, e := range f.Episodes {
			item := rssItem{
				Title: e.Title, Link: page + "/e/" + strconv.FormatInt(e.ID, 10), Description: e.Description,
				GUID:        rssGUID{Value: e.Record.InfoHashHex()},
				PubDate:     pubDate(e.PublishedAt),
				Enclosure:   rssEnclosure{URL: e.WebSeed, Length: e.Record.Length, Type: e.Record.ContentType},
				EpisodeType: "full",
			}
			if e.Duration != nil {
				item.Duration = strconv.Itoa(*e.Duration)
			}
			if e.Number != nil {
				item.Episode = *e.Number
			}
			ch.Items = append(ch.Items, item)
		}
		writeRSS(w, rss{Version: "2.0", NSPodcast: nsPodcast, NSItunes: nsItunes, NSAtom: nsAtom, Channel: ch})
	}
}
