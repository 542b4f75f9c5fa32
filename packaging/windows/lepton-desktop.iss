; Inno Setup script: a Windows installer for the one-folder build, with the *.lepton
; file association (a double-click opens the project in Lepton Desktop).
;
; NOT BUILT HERE: Inno Setup (ISCC.exe) runs on Windows only, and the spec has been
; built and tested on Linux only. tests/packaging/test_installer_scripts.py parses this
; file and checks the association's registry entries. On Windows, after
; `pyinstaller packaging\lepton_desktop.spec` has made dist\lepton-desktop\:
;
;   iscc /DAppVersion=0.1.0 packaging\windows\lepton-desktop.iss
;
; The installer goes to dist\installer\. It installs for the current user by default
; (no administrator rights; HKA = HKCU then) and for all users when elevated (HKLM).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Lepton Desktop"
#define AppExe "lepton-desktop.exe"
#define ProgId "LeptonDesktop.Project"

[Setup]
; The AppId identifies the app to Windows' uninstaller across versions: never change it.
AppId={{6E1C3F2A-8B47-4C1D-9A55-4C45505441A1}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Lepton Desktop contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Tell Explorer the associations changed, so the icon and "Open" apply at once.
ChangesAssociations=yes
OutputDir=..\..\dist\installer
OutputBaseFilename=lepton-desktop-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\{#AppExe}

[Files]
; The whole PyInstaller folder: the executable and _internal\ (Python, Qt, torch, ...).
Source: "..\..\dist\lepton-desktop\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Registry]
; .lepton -> the ProgId (listed among "Open with"; the default when nothing else claims it).
Root: HKA; Subkey: "Software\Classes\.lepton"; ValueType: string; ValueName: ""; ValueData: "{#ProgId}"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.lepton"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-lepton-project"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.lepton\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
; The ProgId: its name in Explorer, its icon, and the command a double-click runs.
Root: HKA; Subkey: "Software\Classes\{#ProgId}"; ValueType: string; ValueName: ""; ValueData: "Lepton Desktop project"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#ProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\{#ProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
; "Open with" lists the app under its own name.
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".lepton"; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
