package bot

import (
	"encoding/json"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
)

// TestRenderContent: an m.text with the Markdown as body and its HTML as formatted_body.
func TestRenderContent(t *testing.T) {
	c := Render("**Project** has `code`\n\n- one\n- two")
	if c.MsgType != event.MsgText || c.Format != event.FormatHTML || c.Body != "**Project** has `code`\n\n- one\n- two" {
		t.Fatalf("%+v", c)
	}
	want := "<p><strong>Project</strong> has <code>code</code></p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>"
	if c.FormattedBody != want {
		t.Errorf("formatted_body\n got %q\nwant %q", c.FormattedBody, want)
	}
	if c.Mentions == nil || len(c.Mentions.UserIDs) != 0 || c.Mentions.Room {
		t.Errorf("mentions %+v, want present and empty", c.Mentions)
	}
	// One line stays one line, without a paragraph around it.
	if c := Render("Chat room was reactivated"); c.FormattedBody != "Chat room was reactivated" {
		t.Errorf("%q", c.FormattedBody)
	}
}

// TestReplyRelation: a reply points at the command with m.relates_to.m.in_reply_to.
func TestReplyRelation(t *testing.T) {
	b, err := json.Marshal(ReplyTo(Render("hi"), "$cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	rel, _ := got["m.relates_to"].(map[string]any)
	irt, _ := rel["m.in_reply_to"].(map[string]any)
	if irt["event_id"] != "$cmd" || got["msgtype"] != "m.text" || got["format"] != "org.matrix.custom.html" || got["formatted_body"] != "hi" {
		t.Errorf("%s", b)
	}
}

// TestEscapedNamesCannotInject: names written by others read as themselves and neither
// format the message nor inject HTML, wherever in a line they stand.
func TestEscapedNamesCannotInject(t *testing.T) {
	names := []string{
		"<script>alert(1)</script>",
		`<img src=x onerror="alert(1)">`,
		"**bold** _it_ `code` ~~strike~~ ||spoiler||",
		"[click](javascript:alert(1))",
		"[click](https://evil.example)",
		"# Heading",
		"> quote",
		"- item",
		"+ item",
		"1. first",
		"3) third",
		"---",
		"===",
		"a\n\n# heading on its own line",
		"&lt;b&gt; &amp; &#60;",
		"| a | b |",
		`back\slash \*`,
	}
	for _, name := range names {
		for _, md := range []string{RoleGranted(name, "PROJECT.ADMIN"), StaffJoined(name), "Hello " + EscapeMarkdown(name) + "!"} {
			html := Render(md).FormattedBody
			for _, bad := range []string{"<script", "<img", "<strong", "<em", "<code", "<del", "<s>", "<a", "<h1", "<blockquote", "<ul", "<ol", "<li", "<hr", "<table", "<span", "<br"} {
				if strings.Contains(html, bad) {
					t.Errorf("name %q: %s in %q", name, bad, html)
				}
			}
			if strings.Contains(html, "\n") {
				t.Errorf("name %q: the message broke into blocks: %q", name, html)
			}
		}
	}
	// What the reader sees is the name itself.
	for name, shown := range map[string]string{
		"<script>alert(1)</script>":   "&lt;script&gt;alert(1)&lt;/script&gt;",
		"**bold** [x](y)":             "**bold** [x](y)",
		"&lt;b&gt; AT&T":              "&amp;lt;b&amp;gt; AT&amp;T",
		"1. first":                    "1. first",
		"Zoë O'Brien-Smith, Ph.D. #1": "Zoë O&#39;Brien-Smith, Ph.D. #1",
	} {
		if got := Render(EscapeMarkdown(name)).FormattedBody; got != shown {
			t.Errorf("%q shows as %q, want %q", name, got, shown)
		}
	}
}

// TestSanitize: only what the Matrix specification allows survives, including from
// Markdown written by staff.
func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<p onclick="x()">hi <b>there</b></p>`, `<p>hi <b>there</b></p>`},
		{`<script>alert(1)</script>ok`, `ok`},
		{`<style>p{}</style><iframe src="https://x"></iframe>ok`, `ok`},
		{`<a href="javascript:alert(1)">x</a>`, `<a>x</a>`},
		{`<a href=" JAVASCRIPT:alert(1)">x</a>`, `<a>x</a>`},
		{`<a href="https://example.org/?a=1&amp;b=2" target="_blank" rel="x">x</a>`, `<a href="https://example.org/?a=1&amp;b=2" target="_blank">x</a>`},
		{`<img src="https://evil/x.png" alt="a"><img src="mxc://hs/abc" onerror="x">`, `<img alt="a"><img src="mxc://hs/abc">`},
		{`<marquee>moving</marquee>`, `moving`},
		{`<code class="language-go">x</code><code class="evil x">y</code>`, `<code class="language-go">x</code><code>y</code>`},
		{`<span data-mx-spoiler="" style="color:red">s</span>`, `<span data-mx-spoiler="">s</span>`},
		{`<!-- comment -->text<br/>more`, `text<br>more`},
		{`<svg><script>x</script></svg>t`, `t`},
		{`a &lt; b`, `a &lt; b`},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
	// Markdown from staff: raw HTML shows as text, links keep safe targets only.
	c := Render("Hi <b>x</b> [doc](https://example.org) [bad](javascript:alert(1)) ![img](https://x/y.png)")
	for _, bad := range []string{"<b>", "javascript", `src="https`} {
		if strings.Contains(c.FormattedBody, bad) {
			t.Errorf("%q in %q", bad, c.FormattedBody)
		}
	}
	if !strings.Contains(c.FormattedBody, `<a href="https://example.org">doc</a>`) || !strings.Contains(c.FormattedBody, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("%q", c.FormattedBody)
	}
}
