package api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// rss is an RSS 2.0 document with the namespaces our feeds use.
type rss struct {
	XMLName   xml.Name   `xml:"rss"`
	Version   string     `xml:"version,attr"`
	NSTorrent string     `xml:"xmlns:torrent,attr,omitempty"`
	NSPodcast string     `xml:"xmlns:podcast,attr,omitempty"`
	NSItunes  string     `xml:"xmlns:itunes,attr,omitempty"`
	Channel   rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string      `xml:"title"`
	Link        string      `xml:"link"`
	Description string      `xml:"description"`
	Generator   string      `xml:"generator"`
	Author      string      `xml:"itunes:author,omitempty"`
	Funding     *rssFunding `xml:"podcast:funding,omitempty"`
	Items       []rssItem   `xml:"item"`
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

// handlePodcastFeed is a podcast feed: enclosures are the web-seed URLs of the files, and
// Podcasting 2.0's funding tag points at the donate page.
func (s *Server) handlePodcastFeed() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := s.loadFanShow(r.Context(), chi.URLParam(r, "slug"))
		if err != nil {
			s.fanError(w, r, err)
			return
		}
		page := s.publisher.BaseURL + "/s/" + f.Show.Slug
		doc := rss{Version: "2.0", NSPodcast: "https://podcastindex.org/namespace/1.0",
			NSItunes: "http://www.itunes.com/dtds/podcast-1.0.dtd", Channel: rssChannel{
				Title: f.Show.Title, Link: page, Description: f.Show.Description, Generator: "Fanseed",
				Author:  f.Show.Title,
				Funding: &rssFunding{URL: page + "/donate", Text: "Support " + f.Show.Title}}}
		for _, e := range f.Episodes {
			doc.Channel.Items = append(doc.Channel.Items, rssItem{
				Title: e.Title, Link: page + "/e/" + strconv.FormatInt(e.ID, 10), Description: e.Description,
				GUID:      rssGUID{Value: e.Record.InfoHashHex()},
				PubDate:   pubDate(e.PublishedAt),
				Enclosure: rssEnclosure{URL: e.WebSeed, Length: e.Record.Length, Type: e.Record.ContentType},
			})
		}
		writeRSS(w, doc)
	}
}
