package deploy

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// SweepOption widens what Sweep removes.
type SweepOption func(*sweepOptions)

type sweepOptions struct {
	all, images bool
}

// SweepAll removes managed resources even when the process that created them
// still runs (or ran on another host). Only for when nothing else uses the
// engine: it kills the deployments of runs going on in parallel.
func SweepAll() SweepOption { return func(o *sweepOptions) { o.all = true } }

// SweepImages also removes images labelled org.telechaos.managed=true that no
// container uses, under the same owner rule (images of `make image` carry no
// owner, so only SweepAll takes them).
func SweepImages() SweepOption { return func(o *sweepOptions) { o.images = true } }

// Sweep removes what earlier, crashed runs left behind: containers, then
// volumes, then networks labelled org.telechaos.managed=true whose owning
// process is gone (images only with SweepImages). Resources of a process that
// still runs, of another host, or without the owner label this package
// writes are left alone (SweepAll takes them too), so a sweep at start-up
// does not kill the deployments of runs in parallel. It returns how many resources it removed
// and every error met on the way.
func Sweep(ctx context.Context, opts ...SweepOption) (removed int, err error) {
	var o sweepOptions
	for _, opt := range opts {
		opt(&o)
	}
	cli, err := newClient(ctx)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	filter := client.Filters{}.Add("label", LabelManaged+"=true")
	stale := func(labels map[string]string) bool { return o.all || !ownerAlive(labels[LabelOwner]) }
	var errs []error

	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return 0, fmt.Errorf("deploy: sweep: list containers: %w", err)
	}
	for _, c := range ctrs.Items {
		if !stale(c.Labels) {
			continue
		}
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
			continue
		}
		removed++
	}

	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	}
	for _, v := range vols.Items {
		if !stale(v.Labels) {
			continue
		}
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		removed++
	}

	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	}
	for _, n := range nets.Items {
		if !stale(n.Labels) {
			continue
		}
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		removed++
	}

	if o.images {
		imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: filter})
		if err != nil {
			errs = append(errs, fmt.Errorf("list images: %w", err))
		}
		for _, im := range imgs.Items {
			if !stale(im.Labels) {
				continue
			}
			if n, err := removeImage(ctx, cli, im.ID, im.RepoTags); err != nil {
				errs = append(errs, err)
			} else {
				removed += n
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("deploy: sweep: %w", err)
	}
	return removed, nil
}

// removeImage untags each tag and then the image itself, without force, so an
// image a container still uses stays (that is not an error). It returns 1 if
// the image is gone.
func removeImage(ctx context.Context, cli client.ImageAPIClient, id string, tags []string) (int, error) {
	for _, ref := range append(tags, id) {
		if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if cerrdefs.IsConflict(err) {
				return 0, nil
			}
			return 0, fmt.Errorf("remove image %s: %w", ref, err)
		}
	}
	return 1, nil
}
