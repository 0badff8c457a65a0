module github.com/oomguard/oomguard

go 1.25
