// Package profile stores Go heap profiles on disk, compares them, and serves
// them over HTTP.
//
// A [Store] owns one directory. [Store.Write] takes a heap profile with
// pprof.Lookup("heap").WriteTo(w, 0), which is the binary format and does not
// stop the world, writes it to a temporary file, syncs it and renames it into
// place, so a partial profile is never visible under a profile name. Every
// profile carries a [Meta] (why and when it was taken, and the memory figures
// at that moment) in a small JSON file beside it. The store bounds itself by a
// minimum interval between writes, a maximum count and a maximum total size;
// the oldest profiles are deleted only after a new write has succeeded.
//
// Opening an existing directory indexes the profiles already there, so
// profiles written before a crash or restart stay listed and served. A
// Store locks its directory until [Store.Close], so that two never share
// one; and it trusts the directory only so far: [Open] refuses one that
// others may write in, and files are read only if they are regular files,
// never through a symbolic link, and within a size bound.
//
// [Diff] and [TopGrowth] compare two profiles, read with protowire (see [Profile]),
// and [Handler] serves the store so that "go tool pprof URL" works.
//
// Profile names are made by the store. Names from callers and HTTP requests
// are only ever looked up in the store's index; they are never used to build
// a file path.
package profile
