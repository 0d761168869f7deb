; Inno Setup 6 script for the therapist assistant on Windows (x64).
;
; Build the one-folder app first on a Windows machine:
;     py -3.11 packaging\build.py --no-pack
; then compile this script:
;     iscc /DAppVersion=0.1.0 packaging\windows\installer.iss
; which writes dist\therapist-assistant-<version>-windows-x64-setup.exe.
;
; Silent install for clinic IT (no window, no prompts, per machine):
;     therapist-assistant-0.1.0-windows-x64-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG="C:\Windows\Temp\therapist-install.log"
; Silent install with a clinic policy placed in one step:
;     ... /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /POLICY="\\server\share\policy.toml"
; Silent uninstall (keeps every user's records; see docs\clinic-it.md to remove them):
;     "C:\Program Files\Therapist Assistant\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Therapist Assistant"
#define SourceDir "..\..\dist\therapist-app"

[Setup]
AppId={{6E1B3C2A-7F0D-4C55-9B61-2D8A4E0F5A17}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Therapist Assistant project
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=therapist-assistant-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; An upgrade installs over the previous version in place; user data lives elsewhere
; (%LOCALAPPDATA%\therapist-app\therapist-app) and is never touched by setup.
UsePreviousAppDir=yes
CloseApplications=yes
UninstallDisplayIcon={app}\{#AppName}.exe

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
; The clinic policy, when /POLICY= names one: copied to the machine-wide location the
; app reads (platformdirs' site config folder), and kept on uninstall.
Source: "{param:POLICY}"; DestDir: "{commonappdata}\therapist-app\therapist-app"; DestName: "policy.toml"; Flags: external skipifsourcedoesntexist uninsneveruninstall; Check: PolicyGiven

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppName}.exe"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"

[Run]
; Interactive installs may start the app; silent installs never do.
Filename: "{app}\{#AppName}.exe"; Description: "Start {#AppName}"; Flags: nowait postinstall skipifsilent

[Code]
function PolicyGiven: Boolean;
begin
  Result := ExpandConstant('{param:POLICY|}') <> '';
end;
