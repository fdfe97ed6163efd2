module github.com/s3cors/s3cors/tools

go 1.26.0

require golang.org/x/image v0.48.0
