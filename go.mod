module github.com/oomguard/oomguard

go 1.25.0

require (
	github.com/KimMachineGun/automemlimit v1.0.1
	github.com/google/pprof v0.0.0-20260906184651-6331bc6350fe
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.40.0
)

require github.com/pbnjay/memory v0.0.0-20210728143218-7b4eea64cf58 // indirect
