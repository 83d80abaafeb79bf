package web

import "html/template"

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · cairn server</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right}
.ok{background:#d9f2dd}.warning{background:#fdf0c2}.alert{background:#f8d0d0}.off{color:#888}
header{display:flex;justify-content:space-between;align-items:center}form.inline{display:inline}
.err{color:#a00}.muted{color:#777}
</style></head><body>{{end}}

{{define "top"}}<header><h1><a href="/ui/">cairn server</a></h1>
<div>{{.Admin}} · <form class="inline" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button type="submit">Log out</button></form></div></header>{{end}}

{{define "login"}}{{template "head" "Log in"}}
<h1>cairn server</h1>
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/ui/login">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><label>Admin <input name="name" id="name" autocomplete="username" required></label></p>
<p><label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit" id="login">Log in</button></p>
</form></body></html>{{end}}

{{define "overview"}}{{template "head" "Status"}}{{template "top" .}}
<p class="muted">As of {{.At}}.</p>
<table id="clients">
<tr><th>Client</th><th>State</th><th>Last backup</th><th>Age</th><th class="num">Stored</th><th>Quota</th><th>Last drill</th><th>Replication</th><th>Open alerts</th></tr>
{{range .Rows}}<tr id="client-{{.Name}}" class="{{.Class}}">
<td><a href="{{.URL}}">{{.Name}}</a></td><td>{{.State}}</td><td>{{.LastBackup}}</td><td>{{.Age}}</td><td class="num">{{.Stored}}</td><td>{{.Quota}}</td>
<td class="{{.DrillClass}}">{{.LastDrill}}{{if eq .DrillState "ALERT"}} (ALERT){{end}}</td>
<td>{{range .Replication}}{{.Destination}}: {{.Lag}}{{if .Error}} ({{.Error}}){{end}}<br>{{else}}<span class="muted">{{.ReplNote}}</span>{{end}}</td>
<td>{{range .Alerts}}{{.Level}}: {{.Reason}}<br>{{else}}-{{end}}</td></tr>
{{else}}<tr><td colspan="9">No clients yet: add one with <code>cairn server client add</code>.</td></tr>{{end}}
</table>
{{with .Backups}}<p id="backups">Backups: {{.Running}} running of at most {{.Limit}} (peak {{.Peak}});
{{if .Queued}}{{len .Queued}} queued: {{range $i, $c := .Queued}}{{if $i}}, {{end}}{{$c}}{{end}}{{else}}none queued{{end}}.</p>{{end}}
<h2>Notifiers</h2>
<table id="notifiers"><tr><th>Notifier</th><th>Kind</th><th>Target</th><th>Health</th></tr>
{{range .Notifiers}}<tr class="{{if .Failing}}alert{{else}}ok{{end}}"><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{.Target}}</td>
<td>{{if .Failing}}FAILING: {{.LastError}}{{else if .Sent}}ok, {{.Sent}} sent{{else}}nothing sent yet{{end}}</td></tr>
{{else}}<tr><td colspan="4">No notifiers: alerts go only to the log and /metrics.</td></tr>{{end}}
</table></body></html>{{end}}

{{define "client"}}{{template "head" .Row.Name}}{{template "top" .}}
{{with .Row}}<h2>Client {{.Name}}</h2>
<table id="summary">
<tr><th>State</th><td class="{{.Class}}">{{.State}}: {{.Reason}}</td></tr>
<tr><th>Last backup</th><td>{{.LastBackup}} ({{.Age}})</td></tr>
<tr><th>Snapshots received</th><td>{{.Snapshots}}</td></tr>
<tr><th>Stored</th><td>{{.Stored}}, quota {{.Quota}}</td></tr>
<tr><th>Restore drill</th><td class="{{.DrillClass}}">{{.DrillState}}: {{.DrillReason}}</td></tr>
</table>
<h3>Repositories</h3>
<table id="drills"><tr><th>Repository</th><th>Last proven restorable</th><th>Snapshot</th><th class="num">Files</th><th class="num">Bytes</th></tr>
{{range .Drills}}<tr><td>{{.Repo}}</td><td>{{if .At.IsZero}}never{{else}}{{.At.Format "2006-01-02 15:04 MST"}}{{end}}</td><td>{{printf "%.8s" .Snapshot}}</td><td class="num">{{.Files}}</td><td class="num">{{.Bytes}}</td></tr>
{{else}}<tr><td colspan="5">No repository yet.</td></tr>{{end}}</table>
<h3>Open alerts</h3>
<ul>{{range .Alerts}}<li>{{.Level}} since {{.Since.Format "2006-01-02 15:04 MST"}}: {{.Reason}}</li>{{else}}<li>none</li>{{end}}</ul>
{{end}}
<h3>Stored size over time</h3>
{{.Chart}}
<h3>History</h3>
<table id="history"><tr><th>Seen</th><th>Last snapshot</th><th class="num">Snapshots</th><th class="num">Stored</th></tr>
{{range .History}}<tr><td>{{.At}}</td><td>{{.Last}}</td><td class="num">{{.Snapshots}}</td><td class="num">{{.Stored}}</td></tr>{{end}}
</table></body></html>{{end}}
`))
