; photofind for Windows: a per-user installer (no administrator rights) with a Start-menu
; entry and an uninstaller, built from the PyInstaller onedir bundle.
;
;   makensis /DPAYLOAD=dist\photofind /DVERSION=0.1.0 /DICON=build\icons\photofind.ico
;            /DOUTFILE=dist\photofind-0.1.0-windows-x64-setup.exe packaging\windows\photofind.nsi
;
; Silent install for tests: setup.exe /S /D=C:\some\folder ; silent remove: uninstall.exe /S

Unicode true
!include "MUI2.nsh"

!ifndef PAYLOAD
  !error "Define PAYLOAD: the PyInstaller bundle folder (holding photofind.exe)"
!endif
!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef OUTFILE
  !define OUTFILE "photofind-${VERSION}-setup.exe"
!endif
!define APPNAME "photofind"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\photofind"

Name "${APPNAME}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\photofind"
InstallDirRegKey HKCU "Software\photofind" "InstallDir"
SetCompressor /SOLID lzma
!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\photofindw.exe"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "photofind" SecMain
  SetShellVarContext current
  ; A previous version's files go first, so no stale module outlives an upgrade.
  RMDir /r "$INSTDIR\_internal"
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortCut "$SMPROGRAMS\photofind.lnk" "$INSTDIR\photofindw.exe" "" "$INSTDIR\photofindw.exe" 0
  WriteRegStr HKCU "Software\photofind" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayName" "photofind"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTKEY}" "Publisher" "The photofind developers"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\photofindw.exe"
  WriteRegStr HKCU "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\photofind.lnk"
  ; Only the program's own folder: the library and the model cache live elsewhere and stay.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\photofind.exe"
  Delete "$INSTDIR\photofindw.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTKEY}"
  DeleteRegKey HKCU "Software\photofind"
SectionEnd
