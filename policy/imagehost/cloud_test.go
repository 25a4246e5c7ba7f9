package imagehost

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCloudRegistry(t *testing.T) {
	tests := map[string]struct {
		host string
		want Cloud
	}{
		"ACR public cloud":                      {host: "myacr.azurecr.io", want: CloudAzure},
		"ACR China":                             {host: "myacr.azurecr.cn", want: CloudAzure},
		"ACR US government":                     {host: "myacr.azurecr.us", want: CloudAzure},
		"ACR with port ignores the port":        {host: "myacr.azurecr.io:443", want: CloudAzure},
		"ACR upper case":                        {host: "MyACR.AzureCR.io", want: CloudAzure},
		"ACR bare domain is not a registry":     {host: "azurecr.io", want: CloudNone},
		"ACR two labels are not a registry":     {host: "a.b.azurecr.io", want: CloudNone},
		"ACR glued suffix is not a registry":    {host: "evilazurecr.io", want: CloudNone},
		"ACR retired Germany cloud":             {host: "myacr.azurecr.de", want: CloudNone},
		"ECR":                                   {host: "123456789012.dkr.ecr.us-east-1.amazonaws.com", want: CloudAWS},
		"ECR China":                             {host: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", want: CloudAWS},
		"ECR FIPS":                              {host: "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", want: CloudAWS},
		"ECR with port ignores the port":        {host: "123456789012.dkr.ecr.us-east-1.amazonaws.com:443", want: CloudAWS},
		"ECR upper case":                        {host: "123456789012.DKR.ECR.US-EAST-1.AmazonAWS.com", want: CloudAWS},
		"ECR account must be 12 digits":         {host: "12345.dkr.ecr.us-east-1.amazonaws.com", want: CloudNone},
		"ECR account must be numeric":           {host: "12345678901a.dkr.ecr.us-east-1.amazonaws.com", want: CloudNone},
		"ECR needs a region":                    {host: "123456789012.dkr.ecr.amazonaws.com", want: CloudNone},
		"ECR region is one label":               {host: "123456789012.dkr.ecr.us.east.amazonaws.com", want: CloudNone},
		"ECR needs dkr":                         {host: "123456789012.api.ecr.us-east-1.amazonaws.com", want: CloudNone},
		"ECR FIPS only in the commercial form":  {host: "123456789012.dkr.ecr-fipsx.us-east-1.amazonaws.com", want: CloudNone},
		"ECR Public is not private ECR":         {host: "public.ecr.aws", want: CloudNone},
		"other amazonaws host":                  {host: "s3.us-east-1.amazonaws.com", want: CloudNone},
		"Artifact Registry regional":            {host: "us-west1-docker.pkg.dev", want: CloudGCP},
		"Artifact Registry multi-region":        {host: "europe-docker.pkg.dev", want: CloudGCP},
		"Artifact Registry with port":           {host: "us-docker.pkg.dev:443", want: CloudGCP},
		"Artifact Registry needs a location":    {host: "docker.pkg.dev", want: CloudNone},
		"Artifact Registry empty location":      {host: "-docker.pkg.dev", want: CloudNone},
		"Artifact Registry non-docker format":   {host: "us-west1-python.pkg.dev", want: CloudNone},
		"Artifact Registry one label only":      {host: "a.us-docker.pkg.dev", want: CloudNone},
		"GCR global":                            {host: "gcr.io", want: CloudGCP},
		"GCR US":                                {host: "us.gcr.io", want: CloudGCP},
		"GCR EU":                                {host: "eu.gcr.io", want: CloudGCP},
		"GCR Asia":                              {host: "asia.gcr.io", want: CloudGCP},
		"GCR upper case with port":              {host: "EU.GCR.IO:443", want: CloudGCP},
		"public k8s.gcr.io mirror is not cloud": {host: "k8s.gcr.io", want: CloudNone},
		"Docker Hub":                            {host: "docker.io", want: CloudNone},
		"Quay":                                  {host: "quay.io", want: CloudNone},
		"Microsoft Container Registry":          {host: "mcr.microsoft.com", want: CloudNone},
		"GitHub Container Registry":             {host: "ghcr.io", want: CloudNone},
		"localhost":                             {host: "localhost:5000", want: CloudNone},
		"IPv6 literal":                          {host: "[::1]:5000", want: CloudNone},
		"empty host":                            {host: "", want: CloudNone},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, CloudRegistry(tc.host))
		})
	}
}
