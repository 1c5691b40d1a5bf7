package bot

import (
	"regexp"
	"strings"

	"github.com/yuin/goldmark"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/format/mdext"
	"maunium.net/go/mautrix/id"
)

// markdown renders the bot's Markdown the way mautrix's format package does (its
// extensions, hard line breaks, raw HTML in the input shown as text), but without
// goldmark's "unsafe" mode, so link targets such as javascript: are dropped too.
var markdown = goldmark.New(format.Extensions, goldmark.WithRendererOptions(gmhtml.WithHardWraps()),
	goldmark.WithExtensions(mdext.EscapeHTML))

// Render turns the Markdown of a message into the content of an m.text event: the
// Markdown itself as body, for clients that show plain text, and its HTML as
// formatted_body (org.matrix.custom.html), sanitized to the tags and attributes the
// Matrix specification allows. m.mentions is empty: the bot pings nobody by name.
func Render(md string) *event.MessageEventContent {
	var buf strings.Builder
	if err := markdown.Convert([]byte(md), &buf); err != nil {
		// goldmark fails only when writing to buf fails, which a strings.Builder never does.
		buf.Reset()
		buf.WriteString(html.EscapeString(md))
	}
	return &event.MessageEventContent{
		MsgType:       event.MsgText,
		Body:          md,
		Format:        event.FormatHTML,
		FormattedBody: Sanitize(format.UnwrapSingleParagraph(buf.String())),
		Mentions:      &event.Mentions{},
	}
}

// ReplyTo makes content a reply to the event eventID (m.relates_to.m.in_reply_to).
func ReplyTo(content *event.MessageEventContent, eventID id.EventID) *event.MessageEventContent {
	content.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: eventID}}
	return content
}

// EscapeMarkdown makes text (a name, a title: one line written by someone else) safe to
// put in the bot's Markdown: it reads as the same text and can neither format the message
// nor inject HTML. Line breaks become spaces.
func EscapeMarkdown(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	var b strings.Builder
	for i, r := range text {
		switch {
		case strings.ContainsRune("\\`*_[]()<>~|", r):
			b.WriteByte('\\')
		case r == '&' && entity.MatchString(text[i:]):
			b.WriteByte('\\') // "&lt;" stays those four characters
		case i == 0 && strings.ContainsRune("#>-+=", r):
			// A character that opens a block (heading, quote, list, setext line) when
			// the text starts a line.
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	out := b.String()
	// An ordered list marker at the start: "1. Bob" or "2) Bob".
	if m := orderedMarker.FindStringIndex(out); m != nil {
		out = out[:m[1]-1] + `\` + out[m[1]-1:]
	}
	return out
}

var (
	orderedMarker = regexp.MustCompile(`^[0-9]{1,9}[.)]`)
	entity        = regexp.MustCompile(`^&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});`)
)

// allowedTags are the HTML tags the Matrix specification lets a formatted_body use
// (client-server API, m.room.message msgtypes); everything else is dropped.
var allowedTags = map[atom.Atom]bool{
	atom.Font: true, atom.Del: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Blockquote: true, atom.P: true, atom.A: true, atom.Ul: true, atom.Ol: true, atom.Sup: true, atom.Sub: true,
	atom.Li: true, atom.B: true, atom.I: true, atom.U: true, atom.Strong: true, atom.Em: true, atom.S: true,
	atom.Code: true, atom.Hr: true, atom.Br: true, atom.Div: true, atom.Table: true, atom.Thead: true, atom.Tbody: true,
	atom.Tr: true, atom.Th: true, atom.Td: true, atom.Caption: true, atom.Pre: true, atom.Span: true, atom.Img: true,
	atom.Details: true, atom.Summary: true,
}

// droppedWithContent are tags whose content is not text to show.
var droppedWithContent = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Iframe: true, atom.Object: true, atom.Embed: true,
	atom.Template: true, atom.Noscript: true, atom.Textarea: true, atom.Select: true, atom.Svg: true, atom.Math: true,
}

// linkSchemes are the schemes the specification allows in a link.
var linkSchemes = []string{"https:", "http:", "ftp:", "mailto:", "magnet:"}

// allowedAttr reports whether attribute a of tag may stay.
func allowedAttr(tag atom.Atom, a html.Attribute) bool {
	if a.Namespace != "" {
		return false
	}
	switch {
	case tag == atom.A && a.Key == "href":
		v := strings.ToLower(strings.TrimSpace(a.Val))
		for _, s := range linkSchemes {
			if strings.HasPrefix(v, s) {
				return true
			}
		}
		return false
	case tag == atom.A && a.Key == "target":
		return a.Val == "_blank"
	case tag == atom.Img && a.Key == "src":
		return strings.HasPrefix(a.Val, "mxc://")
	case tag == atom.Img && (a.Key == "width" || a.Key == "height" || a.Key == "alt" || a.Key == "title"):
		return true
	case tag == atom.Ol && a.Key == "start":
		return true
	case tag == atom.Code && a.Key == "class":
		return strings.HasPrefix(a.Val, "language-") && !strings.ContainsAny(a.Val, " \t\n")
	case (tag == atom.Span || tag == atom.Font) && (a.Key == "data-mx-bg-color" || a.Key == "data-mx-color" || a.Key == "data-mx-spoiler"):
		return true
	case tag == atom.Font && a.Key == "color":
		return true
	}
	return false
}

// Sanitize keeps of an HTML fragment only the tags and attributes the Matrix
// specification allows in formatted_body, and only safe link targets. The bot's own
// HTML comes from Markdown whose raw HTML is already escaped: this is the second wall,
// for Markdown written by staff and for anything the renderer might let through.
func Sanitize(fragment string) string {
	nodes, err := html.ParseFragment(strings.NewReader(fragment), &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div})
	if err != nil {
		return html.EscapeString(fragment)
	}
	var b strings.Builder
	for _, n := range nodes {
		writeClean(&b, n)
	}
	return b.String()
}

func writeClean(b *strings.Builder, n *html.Node) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(html.EscapeString(n.Data))
		return
	case html.ElementNode:
	default:
		return // comments, doctypes
	}
	if droppedWithContent[n.DataAtom] {
		return
	}
	keep := allowedTags[n.DataAtom]
	if keep {
		b.WriteByte('<')
		b.WriteString(n.DataAtom.String())
		for _, a := range n.Attr {
			if allowedAttr(n.DataAtom, a) {
				b.WriteByte(' ')
				b.WriteString(a.Key)
				b.WriteString(`="`)
				b.WriteString(html.EscapeString(a.Val))
				b.WriteByte('"')
			}
		}
		b.WriteByte('>')
		if n.DataAtom == atom.Br || n.DataAtom == atom.Hr || n.DataAtom == atom.Img {
			return
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		writeClean(b, c)
	}
	if keep {
		b.WriteString("</")
		b.WriteString(n.DataAtom.String())
		b.WriteByte('>')
	}
}
