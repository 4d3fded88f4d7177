package models

import "fmt"

// Role is what a user is to the target.
type Role string

const (
	Patient   Role = "patient"
	Clinician Role = "clinician"
)

// ParseRole accepts exactly "patient" or "clinician".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case Patient, Clinician:
		return Role(s), nil
	}
	return "", fmt.Errorf("unknown role %q (want patient or clinician)", s)
}

// Kind is a media kind.
type Kind string

const (
	Audio Kind = "audio"
	Video Kind = "video"
)

// User is a virtual user as the target knows it.
type User struct {
	ID    string
	Role  Role
	Token string
}

// Consultation is one booked call between a patient and a clinician.
type Consultation struct {
	ID            string
	AppointmentID string
	Patient       string // user id
	Clinician     string // user id
}

// Has reports whether user id took part in (is a participant of) c.
func (c *Consultation) Has(id string) bool { return id == c.Patient || id == c.Clinician }

// Track is one recorded media track of a recording, as the target describes it.
type Track struct {
	ID      string
	Owner   string // user id the target says sent it (metadata: may lie)
	Kind    Kind
	Segment int
	Frames  int
}

// Recording is the replay of one consultation.
type Recording struct {
	ID           string
	Consultation string
	Participants []string
	Tracks       []Track
}
