package web

import "github.com/callvault/callvault"

// fieldError is one problem with a form, tied to the field (its id) it is
// about; "" for a problem with the form as a whole.
type fieldError struct {
	Field, Message string
}

// formErrors are a form's problems, in the order the form asks. Templates
// show them twice, as the accessible pattern asks: a summary at the top
// whose items link to the fields, and each message next to its field
// (For), with the field marked aria-invalid and described by the message.
type formErrors struct {
	list []fieldError
}

func newFormErrors() *formErrors { return &formErrors{} }

// Add records a problem with field; only the first one per field is kept.
func (e *formErrors) Add(field, msg string) {
	if e.For(field) == "" || field == "" {
		e.list = append(e.list, fieldError{field, msg})
	}
}

// AddErr records err's client-safe message against field.
func (e *formErrors) AddErr(field string, err error) { e.Add(field, callvault.ErrorMessage(err)) }

// For returns the message for field, or "".
func (e *formErrors) For(field string) string {
	if e == nil {
		return ""
	}
	for _, fe := range e.list {
		if fe.Field == field {
			return fe.Message
		}
	}
	return ""
}

// Any reports whether there is a problem.
func (e *formErrors) Any() bool { return e != nil && len(e.list) > 0 }

// List is every problem, for the summary.
func (e *formErrors) List() []fieldError {
	if e == nil {
		return nil
	}
	return e.list
}
