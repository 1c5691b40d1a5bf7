package waldur

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ResourceState is a marketplace resource's state.
type ResourceState string

// The resource states the API describes.
const (
	ResourceCreating    ResourceState = "Creating"
	ResourceOK          ResourceState = "OK"
	ResourceErred       ResourceState = "Erred"
	ResourceUpdating    ResourceState = "Updating"
	ResourceTerminating ResourceState = "Terminating"
	ResourceTerminated  ResourceState = "Terminated"
)

// OrderState is a marketplace order's state.
type OrderState string

// The order states the API describes.
const (
	OrderPendingConsumer  OrderState = "pending-consumer"
	OrderPendingProvider  OrderState = "pending-provider"
	OrderPendingProject   OrderState = "pending-project"
	OrderPendingStartDate OrderState = "pending-start-date"
	OrderExecuting        OrderState = "executing"
	OrderDone             OrderState = "done"
	OrderErred            OrderState = "erred"
	OrderCanceled         OrderState = "canceled"
	OrderRejected         OrderState = "rejected"
)

// OrdersAwaitingApproval are the states of an order someone still has to approve
// (the bot's !status counts them).
var OrdersAwaitingApproval = []OrderState{OrderPendingConsumer, OrderPendingProvider, OrderPendingProject}

// Resource is what the bot shows of a project's marketplace resource.
type Resource struct {
	UUID         string
	Name         string
	State        ResourceState
	OfferingName string
}

// Order is what the bot shows of a marketplace order (!orders: state, type, resource,
// date; notifications: type, offering, who asked).
type Order struct {
	UUID              string
	State             OrderState
	Type              string // Create, Update, Terminate, Restore
	ResourceName      string
	OfferingName      string
	CreatedByUsername string
	CreatedByFullName string
	Created           time.Time
}

// AwaitingApproval reports whether someone still has to approve the order.
func (o Order) AwaitingApproval() bool {
	for _, s := range OrdersAwaitingApproval {
		if o.State == s {
			return true
		}
	}
	return false
}

// Page is the first page of a live read: up to the asked number of items, and how
// many the platform has in all (for "+N more").
type Page[T any] struct {
	Items []T
	Total int
}

var (
	resourceFields = []string{"uuid", "name", "state", "offering_name"}
	orderFields    = []string{"uuid", "state", "type", "resource_name", "offering_name",
		"created_by_username", "created_by_full_name", "created"}
)

type wireResource struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	State        string `json:"state"`
	OfferingName string `json:"offering_name"`
}

type wireOrder struct {
	UUID              string `json:"uuid"`
	State             string `json:"state"`
	Type              string `json:"type"`
	ResourceName      string `json:"resource_name"`
	OfferingName      string `json:"offering_name"`
	CreatedByUsername string `json:"created_by_username"`
	CreatedByFullName string `json:"created_by_full_name"`
	Created           string `json:"created"`
}

// ProjectResources reads up to limit (1 to PageSize) of a project's resources in the
// given states (all states when none), in one request, and their total.
func (c *Client) ProjectResources(ctx context.Context, projectUUID string, states []ResourceState, limit int) (Page[Resource], error) {
	q, err := liveQuery(projectUUID, limit, resourceFields)
	if err != nil {
		return Page[Resource]{}, err
	}
	for _, s := range states {
		q.Add("state", string(s))
	}
	return firstPage(ctx, c, "/api/marketplace-resources/", q, func(w *wireResource) (Resource, error) {
		id, ok := NormalizeUUID(w.UUID)
		if !ok {
			return Resource{}, malformed("a resource", "uuid", w.UUID)
		}
		return Resource{UUID: id, Name: w.Name, State: ResourceState(w.State), OfferingName: w.OfferingName}, nil
	})
}

// ProjectOrders reads a project's latest orders, newest first: up to limit (1 to
// PageSize; 0 means 5, what !orders shows) in the given states (all when none), in one
// request, and their total.
func (c *Client) ProjectOrders(ctx context.Context, projectUUID string, states []OrderState, limit int) (Page[Order], error) {
	if limit == 0 {
		limit = 5
	}
	q, err := liveQuery(projectUUID, limit, orderFields)
	if err != nil {
		return Page[Order]{}, err
	}
	q.Set("o", "-created")
	for _, s := range states {
		q.Add("state", string(s))
	}
	return firstPage(ctx, c, "/api/marketplace-orders/", q, func(w *wireOrder) (Order, error) {
		id, ok := NormalizeUUID(w.UUID)
		if !ok {
			return Order{}, malformed("an order", "uuid", w.UUID)
		}
		var created time.Time
		if w.Created != "" {
			var err error
			if created, err = time.Parse(time.RFC3339Nano, w.Created); err != nil {
				return Order{}, malformed("order "+id, "created", w.Created)
			}
		}
		return Order{UUID: id, State: OrderState(w.State), Type: w.Type, ResourceName: w.ResourceName,
			OfferingName: w.OfferingName, CreatedByUsername: w.CreatedByUsername,
			CreatedByFullName: w.CreatedByFullName, Created: created}, nil
	})
}

func liveQuery(projectUUID string, limit int, fields []string) (url.Values, error) {
	id, ok := NormalizeUUID(projectUUID)
	if !ok {
		return nil, fmt.Errorf("waldur: %q is not a project uuid", projectUUID)
	}
	if limit < 1 || limit > PageSize {
		return nil, fmt.Errorf("waldur: a live read takes 1 to %d items, not %d", PageSize, limit)
	}
	q := fieldQuery(fields)
	q.Set("project_uuid", id)
	q.Set("page_size", strconv.Itoa(limit))
	return q, nil
}

// firstPage reads one page (no Link following) and converts its items.
func firstPage[W, T any](ctx context.Context, c *Client, path string, q url.Values, conv func(*W) (T, error)) (Page[T], error) {
	var page Page[T]
	err := c.do(ctx, http.MethodGet, c.endpoint(path, q), nil, func(resp *http.Response) error {
		page = Page[T]{}
		err := decodeList(resp.Body, func(dec *jsontext.Decoder) error {
			var w W
			if err := json.UnmarshalDecode(dec, &w); err != nil {
				return err
			}
			t, err := conv(&w)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, t)
			return nil
		})
		if err != nil {
			return err
		}
		if page.Total = resultCount(resp.Header); page.Total < len(page.Items) {
			page.Total = len(page.Items)
		}
		return nil
	})
	return page, err
}

// Ping checks that the platform answers and accepts the token, with one small request
// (the first customer's uuid), and returns how many customers the token's user sees. A
// rejected token is ErrTokenRejected, as everywhere.
func (c *Client) Ping(ctx context.Context) (customers int, err error) {
	q := fieldQuery([]string{"uuid"})
	q.Set("page_size", "1")
	page, err := firstPage(ctx, c, "/api/customers/", q, func(w *wireCustomer) (string, error) { return w.UUID, nil })
	return page.Total, err
}
