{{/* Name of the chart, or nameOverride. */}}
{{- define "communication-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: fullnameOverride, or <release>-<chart> unless the release already contains the chart name. */}}
{{- define "communication-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "communication-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "communication-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "communication-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "communication-operator.labels" -}}
helm.sh/chart: {{ include "communication-operator.chart" . }}
{{ include "communication-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: octo-mesh
{{- end }}

{{- define "communication-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "communication-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "communication-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Name of the Secret holding the credentials: the user's existing Secret or the chart-managed one. */}}
{{- define "communication-operator.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "communication-operator.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{/*
Credentials the chart-managed Secret holds: a dict of secret key -> value, only for values that are set.
*/}}
{{- define "communication-operator.managedCredentials" -}}
{{- $keys := .Values.credentials.keys }}
{{- $data := dict }}
{{- if .Values.broker.password }}{{ $_ := set $data $keys.brokerPassword .Values.broker.password }}{{ end }}
{{- if .Values.authentication.clientSecret }}{{ $_ := set $data $keys.clientSecret .Values.authentication.clientSecret }}{{ end }}
{{- if .Values.clusterSecrets.mongodbUserPassword }}{{ $_ := set $data $keys.mongodbUserPassword .Values.clusterSecrets.mongodbUserPassword }}{{ end }}
{{- if .Values.clusterSecrets.mongodbAdminPassword }}{{ $_ := set $data $keys.mongodbAdminPassword .Values.clusterSecrets.mongodbAdminPassword }}{{ end }}
{{- if .Values.clusterSecrets.streamDataPassword }}{{ $_ := set $data $keys.streamDataPassword .Values.clusterSecrets.streamDataPassword }}{{ end }}
{{- toYaml $data }}
{{- end }}

{{/*
The grace period: long enough for a running helm install (operator.helm.timeoutSeconds) to finish or
roll back after SIGTERM, plus time to report to the controller.
*/}}
{{- define "communication-operator.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int (ceil .Values.operator.helm.timeoutSeconds)) 60 }}
{{- else }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- if le (float64 $grace) (float64 .Values.operator.helm.timeoutSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than operator.helm.timeoutSeconds (%v): the kubelet would kill helm mid-install and leave the release pending" $grace .Values.operator.helm.timeoutSeconds) }}
{{- end }}
{{- $grace }}
{{- end }}
{{- end }}

{{/*
Checks that need more than the JSON schema; each failure names the value and how to fix it.
*/}}
{{- define "communication-operator.validate" -}}
{{- if not .Values.operator.controllerUri }}
{{- fail "operator.controllerUri is required: set the Communication Controller's base URL, e.g. --set operator.controllerUri=https://octo.example.com/communication" }}
{{- end }}
{{- $existing := .Values.credentials.existingSecret }}
{{- if .Values.operator.autoManagePools }}
{{- if or (not .Values.broker.host) (not .Values.broker.username) }}
{{- fail "central mode (operator.autoManagePools=true) needs broker.host and broker.username: the operator writes them into each pool's connection secret" }}
{{- end }}
{{- if and (not .Values.broker.password) (not $existing) }}
{{- fail "central mode (operator.autoManagePools=true) needs the broker password: set broker.password, or credentials.existingSecret with the key credentials.keys.brokerPassword" }}
{{- end }}
{{- end }}
{{- $auth := .Values.authentication }}
{{- if and $auth.issuerUri (not $auth.clientId) }}
{{- fail "authentication.issuerUri is set but authentication.clientId is not: set both to authenticate to the controller, or neither" }}
{{- end }}
{{- if and $auth.clientId (not $auth.issuerUri) }}
{{- fail "authentication.clientId is set but authentication.issuerUri is not: set both to authenticate to the controller, or neither" }}
{{- end }}
{{- if and $auth.clientId (not $auth.clientSecret) (not $existing) }}
{{- fail "authentication.clientId is set but there is no client secret: set authentication.clientSecret, or credentials.existingSecret with the key credentials.keys.clientSecret" }}
{{- end }}
{{- if $existing }}
{{- if or .Values.broker.password $auth.clientSecret .Values.clusterSecrets.mongodbUserPassword .Values.clusterSecrets.mongodbAdminPassword .Values.clusterSecrets.streamDataPassword }}
{{- fail (printf "credentials.existingSecret (%s) is set, so the chart creates no Secret: remove broker.password, authentication.clientSecret and clusterSecrets.* from the values and put them into that Secret" $existing) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.rbac.scope "namespace") (not .Values.operator.watchNamespace) }}
{{- fail "rbac.scope=namespace needs operator.watchNamespace: with namespaced Roles the operator cannot watch CommunicationPools in all namespaces" }}
{{- end }}
{{- end }}

{{/* A secretKeyRef env entry: name, key, optional. */}}
{{- define "communication-operator.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/*
The operator's environment: OPERATOR__* variables read by communication_operator/settings.py.
Optional settings are rendered only when set, so the operator's own defaults apply otherwise.
*/}}
{{- define "communication-operator.env" -}}
{{- $op := .Values.operator }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OPERATOR__COMMUNICATIONCONTROLLERURI
  value: {{ $op.controllerUri | quote }}
- name: OPERATOR__CONTROLLERVERIFYTLS
  value: {{ $op.controllerVerifyTls | quote }}
- name: OPERATOR__AUTOMANAGEPOOLS
  value: {{ $op.autoManagePools | quote }}
- name: OPERATOR__WATCHNAMESPACE
  value: {{ $op.watchNamespace | quote }}
- name: OPERATOR__POOLNAMESPACE
  value: {{ $op.poolNamespace | quote }}
- name: OPERATOR__CONTRACT
  value: {{ $op.contract | default "auto" | quote }}
{{- with $op.platformNamespace }}
- name: OPERATOR__PLATFORMNAMESPACE
  value: {{ . | quote }}
{{- end }}
- name: OPERATOR__POOLREGISTRATIONRETRYSECONDS
  value: {{ $op.poolRegistrationRetrySeconds | quote }}
{{- range $key, $env := dict "instancePrefix" "INSTANCEPREFIX" "workloadControllerUri" "WORKLOADCOMMUNICATIONCONTROLLERURI" "reportingServiceUri" "REPORTINGSERVICEURI" "authUri" "AUTHURI" "imageRegistry" "IMAGEREGISTRY" "rootCaCertificate" "ROOTCACERTIFICATE" }}
{{- with index $op $key }}
- name: OPERATOR__{{ $env }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if $op.adapterIgnoreCertificateValidation }}
- name: OPERATOR__ADAPTERIGNORECERTIFICATEVALIDATION
  value: "true"
{{- end }}
{{- range $key, $value := $op.clusterDependencies }}
{{- if $value }}
- name: OPERATOR__CLUSTERDEPENDENCIES__{{ upper $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- with $op.ingress }}
{{- if .className }}
- name: OPERATOR__INGRESS__CLASSNAME
  value: {{ .className | quote }}
{{- end }}
{{- if .clusterIssuer }}
- name: OPERATOR__INGRESS__CLUSTERISSUER
  value: {{ .clusterIssuer | quote }}
{{- end }}
{{- if kindIs "bool" .tls }}
- name: OPERATOR__INGRESS__TLS
  value: {{ .tls | quote }}
{{- end }}
{{- range $index, $name := keys .annotations | sortAlpha }}
- name: OPERATOR__INGRESS__ANNOTATIONS__{{ $index }}__NAME
  value: {{ $name | quote }}
- name: OPERATOR__INGRESS__ANNOTATIONS__{{ $index }}__VALUE
  value: {{ index $.Values.operator.ingress.annotations $name | quote }}
{{- end }}
{{- end }}
{{- with .Values.broker }}
{{- if .host }}
- name: OPERATOR__BROKERHOST
  value: {{ .host | quote }}
{{- end }}
- name: OPERATOR__BROKERVIRTUALHOST
  value: {{ .virtualHost | quote }}
- name: OPERATOR__BROKERPORT
  value: {{ .port | quote }}
{{- if .username }}
- name: OPERATOR__BROKERUSER
  value: {{ .username | quote }}
{{- end }}
{{- end }}
{{- with .Values.authentication }}
{{- if .issuerUri }}
- name: OPERATOR__AUTHENTICATION__ISSUERURI
  value: {{ .issuerUri | quote }}
{{- end }}
{{- if .clientId }}
- name: OPERATOR__AUTHENTICATION__CLIENTID
  value: {{ .clientId | quote }}
{{- end }}
{{- if .tenantId }}
- name: OPERATOR__AUTHENTICATION__TENANTID
  value: {{ .tenantId | quote }}
{{- end }}
{{- end }}
{{- /* Credentials: from the existing Secret (by key) or from the chart-managed Secret (only keys that are set). */}}
{{- $secret := include "communication-operator.credentialsSecretName" . }}
{{- $keys := .Values.credentials.keys }}
{{- $existing := .Values.credentials.existingSecret }}
{{- $managed := include "communication-operator.managedCredentials" . | fromYaml }}
{{- /* Broker password and client secret: required keys when the feature is configured. */}}
{{- if or (hasKey $managed $keys.brokerPassword) (and $existing .Values.broker.username) }}
{{ include "communication-operator.secretEnv" (dict "name" "OPERATOR__BROKERPASSWORD" "secret" $secret "key" $keys.brokerPassword "optional" false) }}
{{- end }}
{{- if or (hasKey $managed $keys.clientSecret) (and $existing .Values.authentication.clientId) }}
{{ include "communication-operator.secretEnv" (dict "name" "OPERATOR__AUTHENTICATION__CLIENTSECRET" "secret" $secret "key" $keys.clientSecret "optional" false) }}
{{- end }}
{{- /* Cluster secrets are optional features: from an existing Secret each key may be absent. */}}
{{- range $setting, $env := dict "mongodbUserPassword" "MONGODBUSERPASSWORD" "mongodbAdminPassword" "MONGODBADMINPASSWORD" "streamDataPassword" "STREAMDATAPASSWORD" }}
{{- $key := index $keys $setting }}
{{- if or (hasKey $managed $key) $existing }}
{{ include "communication-operator.secretEnv" (dict "name" (printf "OPERATOR__CLUSTERSECRETS__%s" $env) "secret" $secret "key" $key "optional" (not (hasKey $managed $key))) }}
{{- end }}
{{- end }}
- name: OPERATOR__HELM__TIMEOUTSECONDS
  value: {{ $op.helm.timeoutSeconds | quote }}
- name: OPERATOR__HELM__MAXCONCURRENT
  value: {{ $op.helm.maxConcurrent | quote }}
- name: OPERATOR__HELM__HISTORYMAX
  value: {{ $op.helm.historyMax | quote }}
{{- if $op.helm.forceConflicts }}
- name: OPERATOR__HELM__FORCECONFLICTS
  value: "true"
{{- end }}
{{- with $op.helm.failFast }}
- name: OPERATOR__HELM__FAILFAST
  value: {{ .enabled | quote }}
- name: OPERATOR__HELM__FAILFASTIMAGEPULLSECONDS
  value: {{ .imagePullSeconds | quote }}
- name: OPERATOR__HELM__FAILFASTIMAGENOTFOUNDSECONDS
  value: {{ .imageNotFoundSeconds | quote }}
- name: OPERATOR__HELM__FAILFASTCRASHLOOPRESTARTS
  value: {{ .crashLoopRestarts | quote }}
- name: OPERATOR__HELM__FAILFASTUNSCHEDULABLESECONDS
  value: {{ .unschedulableSeconds | quote }}
{{- end }}
- name: OPERATOR__HEALTH__PORT
  value: {{ .Values.health.port | quote }}
- name: OPERATOR__METRICS__PORT
  value: {{ .Values.metrics.port | quote }}
- name: OPERATOR__LOG__FORMAT
  value: {{ $op.log.format | quote }}
- name: OPERATOR__LOG__LEVEL
  value: {{ $op.log.level | quote }}
{{- with $op.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* RBAC rules for namespaced resources (rationale in templates/rbac.yaml and docs/install.md). */}}
{{- define "communication-operator.rules.namespaced" }}
- apiGroups: ["octo-mesh.meshmakers.io"]
  resources: ["communicationpools", "deploymentsites"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["octo-mesh.meshmakers.io"]
  resources: ["communicationpools/status", "deploymentsites/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["octo-mesh.meshmakers.io"]
  resources: ["communicationpools/finalizers", "deploymentsites/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* RBAC rules for cluster-scoped resources: read-only discovery. */}}
{{- define "communication-operator.rules.cluster" }}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
