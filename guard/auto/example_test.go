package auto_test

import (
	"net/http"

	"github.com/oomguard/oomguard/guard/auto"
)

// A blank import starts the guard; Guard hands it to the code that sheds
// load. With OOMGUARD=off, Guard is nil and the handler runs unguarded.
func Example() {
	// import _ "github.com/oomguard/oomguard/guard/auto"
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var h http.Handler = app
	if g := auto.Guard(); g != nil {
		h = g.Middleware(app)
	}
	http.Handle("/", h)
}
