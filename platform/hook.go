package platform

import (
	"context"
	"errors"
	"slices"

	"matrixas/waldur"
)

// ErrNoReceiverURL refuses to register the hook when this server's public URL is not known.
var ErrNoReceiverURL = errors.New("this server's public URL is not known: set PUBLIC_URL")

// RegisterHook makes the platform post the events the worker handles to receiverURL (the
// receiver's URL, secret included) as JSON. A hook already registered there with every
// type is kept and returned with existing set, so pressing the button twice registers
// one hook. The hook's destination holds the secret: show it redacted.
func (s *Syncer) RegisterHook(ctx context.Context, receiverURL string) (hook waldur.Hook, existing bool, err error) {
	if receiverURL == "" {
		return waldur.Hook{}, false, ErrNoReceiverURL
	}
	hooks, err := s.client.Hooks(ctx, receiverURL)
	if err != nil {
		return waldur.Hook{}, false, err
	}
	for _, h := range hooks {
		if h.IsActive && h.ContentType == "json" && containsAll(h.EventTypes, waldur.HookEventTypes) {
			return h, true, nil
		}
	}
	h, err := s.client.RegisterHook(ctx, receiverURL, waldur.HookEventTypes)
	return h, false, err
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
