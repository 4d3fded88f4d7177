package clinic

import (
	"sync"
	"time"
)

// listCacheTTL bounds how stale a replay list can be; ends invalidate their
// participants' entries at once, so the TTL only covers unforeseen writers.
const listCacheTTL = 2 * time.Second

// listCache caches replay list responses. Entries are keyed by the string the
// handler builds (which must name the user, see cacheKey) and also indexed by
// user so an end can drop its participants' lists. A per-user generation keeps
// a list computed before an invalidation from being stored after it.
type listCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]cacheEntry
	byUser  map[string]map[string]struct{}
	gen     map[string]uint64
}

type cacheEntry struct {
	body    []byte
	expires time.Time
}

func newListCache(ttl time.Duration) *listCache {
	return &listCache{
		ttl:     ttl,
		entries: map[string]cacheEntry{},
		byUser:  map[string]map[string]struct{}{},
		gen:     map[string]uint64{},
	}
}

func (c *listCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if time.Now().After(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.body, true
}

// generation is read before computing a list for uid; put stores only if it
// has not moved since.
func (c *listCache) generation(uid string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen[uid]
}

func (c *listCache) put(uid, key string, gen uint64, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[uid] != gen {
		return
	}
	now := time.Now()
	// Sweep expired entries now and then so the map stays bounded by the
	// number of users active within one TTL.
	if len(c.entries) > 0 && len(c.entries)%256 == 0 {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = cacheEntry{body: body, expires: now.Add(c.ttl)}
	keys := c.byUser[uid]
	if keys == nil {
		keys = map[string]struct{}{}
		c.byUser[uid] = keys
	}
	keys[key] = struct{}{}
}

// invalidate drops the cached lists of the given users.
func (c *listCache) invalidate(uids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, uid := range uids {
		c.gen[uid]++
		for k := range c.byUser[uid] {
			delete(c.entries, k)
		}
		delete(c.byUser, uid)
	}
}
