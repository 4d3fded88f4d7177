package driver

import "errors"

// ReadOgg returns the Opus packets of an Ogg stream, skipping the OpusHead and
// OpusTags header packets.
func ReadOgg(b []byte) ([][]byte, error) { return nil, errors.New("TODO") }

// ReadIVF returns the VP8 frames of an IVF file.
func ReadIVF(b []byte) ([][]byte, error) { return nil, errors.New("TODO") }
