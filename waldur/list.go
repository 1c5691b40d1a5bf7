package waldur

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// listPages requests path with query (page_size added) and then every page the Link
// headers point to, decoding each page's items as W and handing each distinct item to
// fn once its whole page has decoded (a page that fails delivers nothing, so a retried
// page is not delivered twice). key names an item; items seen on an earlier page are
// skipped.
//
// Pages are offsets, so an item deleted before the reader's position slides the next
// one back onto a page already read, and that one is never seen: it would look
// removed. X-Result-Count tells: the list shrinking between two pages is
// ErrListChanged. So is reading fewer distinct items than it counts at the end, which
// catches an ordering that is not stable between requests; it also fires when an item
// is added ahead of the reader, which only the users list (no creation order in the
// API) allows, and rarely: the next run reads it again. Items added to the
// creation-ordered lists land at the end and are read.
func listPages[W any](ctx context.Context, c *Client, path string, query url.Values, key func(*W) string, fn func(*W) error) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("page_size", strconv.Itoa(PageSize))
	next := c.endpoint(path, query)
	buf := make([]W, 0, PageSize)
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{})
	visited := make(map[string]struct{})
	count := -1
	for next != "" {
		if _, again := visited[next]; again {
			return &Error{Method: http.MethodGet, Path: path, Err: fmt.Errorf("%w: the Link headers lead back to a page already read", ErrMalformed)}
		}
		visited[next] = struct{}{}
		var link string
		before := count
		err := c.do(ctx, http.MethodGet, next, nil, func(resp *http.Response) error {
			buf = buf[:0]
			err := decodeList(resp.Body, func(dec *jsontext.Decoder) error {
				var w W
				if err := json.UnmarshalDecode(dec, &w); err != nil {
					return err
				}
				buf = append(buf, w)
				return nil
			})
			if err != nil {
				return err
			}
			link, count = nextLink(resp.Header), resultCount(resp.Header)
			return nil
		})
		if err != nil {
			return err
		}
		if before >= 0 && count >= 0 && count < before {
			return &Error{Method: http.MethodGet, Path: path,
				Err: fmt.Errorf("%w: %d items counted on one page, %d on the next", ErrListChanged, before, count)}
		}
		for i := range buf {
			h := maphash.String(seed, key(&buf[i]))
			if _, dup := seen[h]; dup {
				continue
			}
			seen[h] = struct{}{}
			if err := fn(&buf[i]); err != nil {
				return err
			}
		}
		if next, err = c.resolveNext(next, link); err != nil {
			return &Error{Method: http.MethodGet, Path: path, Err: err}
		}
	}
	if count >= 0 && len(seen) < count {
		return &Error{Method: http.MethodGet, Path: path,
			Err: fmt.Errorf("%w: %d distinct items read, the platform counts %d", ErrListChanged, len(seen), count)}
	}
	return nil
}

// getOne reads one JSON object into out.
func getOne(ctx context.Context, c *Client, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, c.endpoint(path, query), nil, func(resp *http.Response) error {
		return decodeObject(resp.Body, out)
	})
}

// limitedBody reads at most maxBodyBytes and remembers a read failure, so that a
// decoding error can be told apart: the network failing (retry) or the platform
// answering badly (do not).
type limitedBody struct {
	r    io.Reader
	left int64
	err  error
}

var errTooLarge = errors.New("answer larger than 64 MiB")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.err = errTooLarge
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// classify turns a decoding failure into ErrMalformed, or into errBodyRead when the
// body itself failed to arrive.
func (b *limitedBody) classify(err error) error {
	switch {
	case errors.Is(err, ErrMalformed):
		return err
	case b.err == errTooLarge:
		return fmt.Errorf("%w: %v", ErrMalformed, errTooLarge)
	case b.err != nil:
		return errBodyRead{b.err}
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// decodeList streams a JSON array of objects, calling each with the decoder positioned
// on every element (each must consume exactly that element).
func decodeList(r io.Reader, each func(*jsontext.Decoder) error) error {
	body := &limitedBody{r: r, left: maxBodyBytes}
	dec := jsontext.NewDecoder(body)
	tok, err := dec.ReadToken()
	if err != nil {
		return body.classify(err)
	}
	if tok.Kind() != '[' {
		return fmt.Errorf("%w: expected a list, got %s", ErrMalformed, kindName(tok.Kind()))
	}
	for {
		switch k := dec.PeekKind(); k {
		case ']':
			if _, err := dec.ReadToken(); err != nil {
				return body.classify(err)
			}
			if _, err := dec.ReadToken(); err != io.EOF {
				if err == nil {
					return fmt.Errorf("%w: data after the list", ErrMalformed)
				}
				return body.classify(err)
			}
			return nil
		case '{':
			if err := each(dec); err != nil {
				return body.classify(err)
			}
		case 0:
			_, err := dec.ReadToken()
			return body.classify(err)
		default:
			return fmt.Errorf("%w: a list item is %s, not an object", ErrMalformed, kindName(k))
		}
	}
}

// decodeObject reads one JSON object, and nothing after it, into out.
func decodeObject(r io.Reader, out any) error {
	body := &limitedBody{r: r, left: maxBodyBytes}
	dec := jsontext.NewDecoder(body)
	if k := dec.PeekKind(); k != '{' {
		if k == 0 {
			_, err := dec.ReadToken()
			return body.classify(err)
		}
		return fmt.Errorf("%w: expected an object, got %s", ErrMalformed, kindName(k))
	}
	if err := json.UnmarshalDecode(dec, out); err != nil {
		return body.classify(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: data after the object", ErrMalformed)
		}
		return body.classify(err)
	}
	return nil
}

// unmarshalLoose decodes b into out with the lenient defaults of encoding/json (used
// for error bodies, whose shape is not the API's business).
func unmarshalLoose(b []byte, out any) error {
	return json.Unmarshal(b, out, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "nothing"
}

// resultCount reads X-Result-Count; -1 when absent or unreadable.
func resultCount(h http.Header) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Result-Count")))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// nextLink returns the target of the rel="next" link in the Link headers, or "".
// A Link value is a comma-separated list of `<uri>; param; param=value`; a URI may
// itself hold commas, so the list is scanned rather than split.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			start := strings.IndexByte(v, '<')
			if start < 0 {
				break
			}
			end := strings.IndexByte(v[start:], '>')
			if end < 0 {
				break
			}
			target := v[start+1 : start+end]
			v = v[start+end+1:]
			params := v
			if i := strings.IndexByte(v, '<'); i >= 0 {
				params = v[:i]
			}
			for _, p := range strings.Split(params, ";") {
				name, val, ok := strings.Cut(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(p), ",")), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// resolveNext turns a next link into the URL to request. The link's path and query are
// used as given, but always on the configured scheme and host: the token goes with every
// request, so a link never takes it elsewhere (nor from https down to http), and a
// platform behind a proxy that writes its internal address into links still pages.
func (c *Client) resolveNext(current, link string) (string, error) {
	if link == "" {
		return "", nil
	}
	cur, err := url.Parse(current)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("%w: the next link is not a URL", ErrMalformed)
	}
	u := cur.ResolveReference(ref)
	path := u.EscapedPath()
	switch {
	case strings.HasPrefix(path, c.base.EscapedPath()+"/api/"):
	case strings.HasPrefix(path, "/api/"):
		path = c.base.EscapedPath() + path // a platform unaware of the proxy's prefix
	default:
		return "", fmt.Errorf("%w: the next link points outside the platform's API", ErrMalformed)
	}
	next := url.URL{Scheme: c.base.Scheme, Host: c.base.Host, RawQuery: u.RawQuery}
	if next.Path, err = url.PathUnescape(path); err != nil {
		return "", fmt.Errorf("%w: the next link's path is not escaped correctly", ErrMalformed)
	}
	next.RawPath = path
	return next.String(), nil
}
